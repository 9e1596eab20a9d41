"""Densify TFLite sparse constant tensors (the DENSIFY op's input) at prepare time.

TFLite's sparsity format (schema SparsityParameters): the dense tensor's dims, plus block dims,
are traversed in `traversal_order`; each traversal level is DENSE (all `dense_size` positions)
or SPARSE_CSR (only the positions listed in array_indices, per parent position through
array_segments). `block_map[k]` names the original dim that block dim k subdivides. The values
array holds the non-zero entries in traversal order.
"""
from __future__ import annotations

import numpy as np

from edgeq.errors import ModelError

DENSE, SPARSE_CSR = 0, 1


def densify_tensor(tdef) -> np.ndarray:
    sp = tdef.sparsity
    shape = tuple(tdef.shape)
    values = np.asarray(tdef.data).reshape(-1)
    where = f"tensor {tdef.index} '{tdef.name}' sparsity"
    rank = len(shape)
    order = list(sp.traversal_order)
    block_map = list(sp.block_map)
    levels = sp.dim_metadata
    n_levels = rank + len(block_map)
    if sorted(order) != list(range(n_levels)) or len(levels) != n_levels:
        raise ModelError(f"{where}: traversal_order {order} / dim_metadata of {len(levels)} "
                         f"levels do not describe {rank} dims and {len(block_map)} block dims")
    if any(not 0 <= b < rank for b in block_map):
        raise ModelError(f"{where}: block_map {block_map} names a dim outside rank {rank}")
    # A block's size is only recorded by a DENSE level (dense_size); a sparse block level would
    # leave it unknown (LiteRT crashes on such tensors).
    for k in range(len(block_map)):
        meta = levels[order.index(rank + k)]
        if meta.format != DENSE or int(meta.dense_size) <= 0:
            raise ModelError(f"{where}: block dim {k} (of dim {block_map[k]}) must be a DENSE "
                             f"level with a positive dense_size")
    # A dense level covering an original dim must span it exactly (blocked dims: dim / block).
    for depth, dim in enumerate(order):
        meta = levels[depth]
        if dim < rank and meta.format == DENSE:
            block = next((int(levels[order.index(rank + k)].dense_size)
                          for k, b in enumerate(block_map) if b == dim), 1)
            if int(meta.dense_size) * block != shape[dim]:
                raise ModelError(f"{where}: level {depth} dense_size {meta.dense_size} does not "
                                 f"cover dim {dim} of size {shape[dim]}")

    # Walk the levels breadth first: `pos` = position within the current level's storage,
    # `coords` = coordinate of each live entry at every level visited so far.
    pos = np.zeros(1, np.int64)
    coords = np.zeros((1, n_levels), np.int64)
    level_size = [0] * n_levels
    for depth, meta in enumerate(levels):
        if meta.format == DENSE:
            size = int(meta.dense_size)
            if size < 0:
                raise ModelError(f"{where}: level {depth} has dense_size {size}")
            level_size[depth] = size
            if len(pos) * max(size, 1) > 1 << 31:
                raise ModelError(f"{where}: too large to densify")
            j = np.tile(np.arange(size, dtype=np.int64), len(pos))
            pos = np.repeat(pos, size) * size + j
            coords = np.repeat(coords, size, axis=0)
            coords[:, depth] = j
        elif meta.format == SPARSE_CSR:
            seg = np.asarray(meta.array_segments, np.int64)
            idx = np.asarray(meta.array_indices, np.int64)
            if seg.size == 0 or pos.size and (pos.max() + 1 >= seg.size):
                raise ModelError(f"{where}: level {depth} array_segments too short")
            if np.any(np.diff(seg) < 0) or seg[0] < 0 or seg[-1] > idx.size:
                raise ModelError(f"{where}: level {depth} array_segments are not a valid CSR "
                                 f"index into {idx.size} indices")
            starts, ends = seg[pos], seg[pos + 1]
            counts = ends - starts
            parent = np.repeat(np.arange(len(pos)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            child = np.repeat(starts, counts) + offsets
            coords = coords[parent]
            coords[:, depth] = idx[child]
            pos = child
            level_size[depth] = -1  # filled from the dense shape below
        else:
            raise ModelError(f"{where}: level {depth} has unknown format {meta.format}")
    if pos.size != values.size:
        raise ModelError(f"{where}: describes {pos.size} values but the buffer holds "
                         f"{values.size}")

    # Traversal level `depth` covers dim order[depth]; dims >= rank are block dims.
    block_size = {block_map[k]: levels[order.index(rank + k)].dense_size
                  for k in range(len(block_map))}
    dense = np.zeros(shape, values.dtype)
    full = np.zeros((pos.size, rank), np.int64)
    for depth, dim in enumerate(order):
        c = coords[:, depth]
        if dim < rank:
            full[:, dim] += c * block_size.get(dim, 1)
        else:
            full[:, block_map[dim - rank]] += c
    if rank and (np.any(full < 0) or np.any(full >= np.array(shape))):
        raise ModelError(f"{where}: an index falls outside the dense shape {list(shape)}")
    if rank:
        dense[tuple(full.T)] = values
    return dense
