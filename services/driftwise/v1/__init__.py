"""Generated from protos/driftwise/v1 by scripts/gen_protos.py. Do not edit."""
