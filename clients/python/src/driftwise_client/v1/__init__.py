"""Generated from protos/driftwise/v1 by clients/python/generate.py. Do not edit."""
