// allocator.h: the caching CPU allocator behind lt_use_caching_allocator,
// lt_caching_allocator_stats and lt_caching_allocator_empty (lvshim.h).
#ifndef LVSHIM_ALLOCATOR_H
#define LVSHIM_ALLOCATOR_H
#include <stdint.h>

namespace lvshim {

// use_caching_allocator makes the caching allocator libtorch's CPU allocator,
// keeping at most cap_bytes of freed blocks.
void use_caching_allocator(uint64_t cap_bytes);
// caching_allocator_stats reports the bytes in use and cached free.
void caching_allocator_stats(uint64_t *in_use, uint64_t *cached);
// caching_allocator_empty frees every cached block (blocks in use stay).
void caching_allocator_empty();

}  // namespace lvshim
#endif
