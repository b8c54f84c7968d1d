"""dfjax's experiment configs, shipped inside the package as `dfjax.configs`: one file per experiment,
each with `get_config(arg)` returning a ConfigDict with every default written out."""
