"""Custom Lava processes. Lava executes every .py file in a process's folder when it looks up models: keep these packages free of import-time side effects."""
