"""The gRPC layer: thin servicers (validate -> call the engine -> convert) and the server."""
