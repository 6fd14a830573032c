"""Rendering: the renderer (rays -> depth, colour, room and object ids), the ray-casting backends behind one
interface (Open3D on the CPU, Mitsuba on CPU or GPU), the numba kernels and the torch shading path."""
