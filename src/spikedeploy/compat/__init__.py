"""Compatibility shims for third-party libraries spikedeploy deploys to."""
