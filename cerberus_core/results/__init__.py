"""The results layer: score tables, metrics and tests, head-diversity analysis, pooling of heads, a run folder's layout and the reader of finished runs."""
