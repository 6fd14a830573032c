"""Storage: sharded HDF5 (writer, reader, deterministic LZF), the manifest, verification, and the train /
familiar / unfamiliar splits of a rendered dataset."""
