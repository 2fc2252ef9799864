"""HTTP/1.1 over asyncio Protocols and httptools: the upstream client pool and the server."""
