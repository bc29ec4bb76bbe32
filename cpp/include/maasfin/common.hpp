// Basic types shared by the whole core: indices, per-sample shapes, aligned storage, errors.
// Contract: every error caused by user input is an InvalidArgument (mapped to Python's ValueError);
// nothing in the core asserts or aborts on user input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace maasfin {

using Index = std::int64_t;
// Shape of one sample (the batch dimension is never part of a Shape).
using Shape = std::vector<Index>;

inline Index numel(const Shape& s) {
    Index n = 1;
    for (Index d : s) n *= d;
    return n;
}

std::string shape_str(const Shape& s);
// Index of the first NaN or infinity in data[0..n), or -1.
Index first_nonfinite(const float* data, Index n);

// A half-open slice [begin, end) of a flat buffer (the parameter arena).
struct Range {
    Index begin, end;
};

class InvalidArgument : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// 64-byte aligned allocator so that kernels may use aligned vector loads.
template <class T>
struct AlignedAllocator {
    using value_type = T;
    AlignedAllocator() = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U>&) {}
    T* allocate(std::size_t n) {
        std::size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
        void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) { std::free(p); }
    template <class U>
    bool operator==(const AlignedAllocator<U>&) const {
        return true;
    }
    template <class U>
    bool operator!=(const AlignedAllocator<U>&) const {
        return false;
    }
};

using FloatVec = std::vector<float, AlignedAllocator<float>>;

}  // namespace maasfin
