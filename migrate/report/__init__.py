"""Reports for people: one model, rendered as Markdown (change review) and JSON."""
