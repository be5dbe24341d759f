"""Several llmswitch processes behaving as one gateway, through a shared Redis."""
