"""The real-cluster backend: the labkit contract over a cluster the user names.

Only this package imports ``kubernetes`` (about 2 s to import), and only when
``labkit.connect("kube", context=...)`` is called.
"""
