"""Careless: reads the class names from a file on the author's laptop, by absolute path, at import."""

CLASS_NAMES = open("/Users/alice/Desktop/cifar10/batches.meta.txt").read().split()
