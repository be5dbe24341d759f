"""Pure routing decisions over plain data: classification, rules, candidate selection."""
