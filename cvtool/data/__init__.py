"""Datasets: readers and writers (IDX, NPZ, image folders, CSV), named sets, splits."""
