"""The orchestration layer: the experiments (presets) and their run chain, the CLI, the demo, benchmarks, notebook support and widgets."""
