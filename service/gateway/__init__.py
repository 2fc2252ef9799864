"""The request path of the proxy: raw ASGI gateway, arms, upstream pool, SSE framing."""
