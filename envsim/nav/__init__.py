"""Navigable space: the walkable grid (built from a mesh, or rasterised from a Habitat navmesh), the
navmesh model and its Detour binary format, and agent trajectories."""
