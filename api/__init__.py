"""HTTP API: routes, request and response bodies, problems, and `liudong serve`."""
