"""Where the parsed model becomes a graph: nodes, rewrites, shape inference and folding."""
