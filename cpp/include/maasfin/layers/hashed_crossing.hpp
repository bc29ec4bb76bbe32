// HashedCrossing (Keras): 2+ inputs of one integer category value each (shape (1,)) -> the bin of
// the tuple among num_bins, as an index ("int") or one-hot. The hash is TensorFlow's
// tf.sparse.cross_hashed for int64 features (sparse_cross_op.cc), which Keras's layer calls:
//   h = 0xDECAFCAFFE; for each input i in order: h = FingerprintCat64(h, uint64(int64(value_i)));
//   bin = h % num_bins
// with FingerprintCat64 the 64-bit mix of tensorflow/core/lib/hash (fingerprint.h). A stable
// function of the values and their order: the same on every platform and in every release.
// A value that is not an integer (a fraction, NaN, infinity) is an error naming the layer.
#pragma once

#include <cstdint>

#include "maasfin/layers/category_encoding.hpp"

namespace maasfin {

// FingerprintCat64(fp1, fp2) of TensorFlow: combines two 64-bit fingerprints.
inline std::uint64_t fingerprint_cat64(std::uint64_t fp1, std::uint64_t fp2) {
    constexpr std::uint64_t kMul = 0xc6a4a7935bd1e995ULL;
    auto shift_mix = [](std::uint64_t v) { return v ^ (v >> 47); };
    std::uint64_t result = fp1 ^ kMul;
    result ^= shift_mix(fp2 * kMul) * kMul;
    result *= kMul;
    result = shift_mix(result) * kMul;
    result = shift_mix(result);
    return result;
}

// The bin of a tuple of integer values (cross_hashed with the default hash key).
std::int64_t hashed_cross_bin(const std::int64_t* values, std::size_t n, std::int64_t num_bins);

class HashedCrossing : public Layer {
public:
    HashedCrossing(Index num_bins, OutputMode mode);
    std::string kind() const override { return "HashedCrossing"; }
    bool differentiable() const override { return false; }
    Shape build(const std::vector<Shape>& inputs, ParamAllocator& params) override;
    void forward(const ForwardArgs& a) const override;
    void backward(const BackwardArgs& a) const override;

private:
    Index num_bins_;
    IndexEncoder enc_;
    std::size_t n_inputs_ = 0;
};

}  // namespace maasfin
