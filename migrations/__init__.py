"""SQL migrations, applied in name order by llmswitch.store.migrate."""
