"""Process containment: what holds a query's process tree and ends it (``/proc`` reads, cgroups, the tree
walk, the host guard, a contained command). ``_procfs``, ``_cgroup`` and ``_guard`` are standard library
only: the guard process loads them by path (``python -I -S _guard.py``), without this package."""
