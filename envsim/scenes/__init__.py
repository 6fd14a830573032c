"""Scenes: the scene model (meshes, materials, objects, rooms), loading and checking mesh files, the room
vocabulary, Habitat scene datasets, procedural houses, dataset annotations (MP3D, HM3D, Replica, Habitat
regions) and the PLY reader they share."""
