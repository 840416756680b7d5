"""The embedded mesh's Kubernetes: API server (object store), admission, and controllers."""
