"""Pure DataFrame -> DataFrame transforms, layer by layer; parameters are passed in, no I/O."""
