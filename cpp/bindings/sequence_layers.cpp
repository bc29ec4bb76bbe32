// Bindings of the spatial, recurrent and attention layers and the wrappers: constructors only, no logic.
#include <pybind11/stl.h>

#include "common.hpp"
#include "maasfin/layers/attention.hpp"
#include "maasfin/layers/conv.hpp"
#include "maasfin/layers/masking.hpp"
#include "maasfin/layers/pooling.hpp"
#include "maasfin/layers/recurrent.hpp"
#include "maasfin/layers/reshaping.hpp"
#include "maasfin/layers/spatial_dropout.hpp"
#include "maasfin/layers/take_output.hpp"
#include "maasfin/layers/wrappers.hpp"

namespace maasfin::bindings {

namespace {
Bidirectional::Merge merge_mode(const std::string& mode) {
    if (mode == "concat") return Bidirectional::Merge::concat;
    if (mode == "sum") return Bidirectional::Merge::sum;
    if (mode == "mul") return Bidirectional::Merge::mul;
    if (mode == "ave") return Bidirectional::Merge::ave;
    throw InvalidArgument("Bidirectional: merge_mode must be 'concat', 'sum', 'mul' or 'ave', got '" + mode + "'");
}

kernels::Pool pool_kind(const std::string& kind) {
    if (kind == "max") return kernels::Pool::max;
    if (kind == "avg") return kernels::Pool::avg;
    throw InvalidArgument("unknown pooling '" + kind + "' (max or avg)");
}

RecurrentOptions options(Index units, const std::string& act, const std::string& rec_act, bool use_bias,
                         bool return_sequences, bool go_backwards, const std::string& ki, const std::string& ri,
                         const std::string& bi, bool return_state, bool has_mask, bool zero_output_for_mask,
                         float dropout, float recurrent_dropout, std::uint64_t seed) {
    RecurrentOptions o{units,
                       parse_activation(act),
                       parse_activation(rec_act),
                       use_bias,
                       return_sequences,
                       go_backwards,
                       parse_initializer(ki),
                       parse_initializer(ri),
                       parse_initializer(bi)};
    o.return_state = return_state;
    o.has_mask = has_mask;
    o.zero_output_for_mask = zero_output_for_mask;
    o.dropout = dropout;
    o.recurrent_dropout = recurrent_dropout;
    o.seed = seed;
    return o;
}
}  // namespace

void bind_sequence_layers(py::module_& m) {
    py::class_<Conv, Layer, std::shared_ptr<Conv>>(m, "Conv").def(
        py::init([](int rank, Index filters, std::pair<Index, Index> kernel, std::pair<Index, Index> strides,
                    std::pair<Index, Index> dilation, const std::string& padding, const std::string& act, bool use_bias,
                    const std::string& ki, const std::string& bi) {
            return std::make_shared<Conv>(rank, filters, kernel.first, kernel.second, strides.first, strides.second,
                                          dilation.first, dilation.second, padding, parse_activation(act), use_bias,
                                          parse_initializer(ki), parse_initializer(bi));
        }),
        py::arg("rank"), py::arg("filters"), py::arg("kernel_size"), py::arg("strides"), py::arg("dilation_rate"),
        py::arg("padding"), py::arg("activation"), py::arg("use_bias"), py::arg("kernel_initializer"),
        py::arg("bias_initializer"));
    py::class_<Pooling, Layer, std::shared_ptr<Pooling>>(m, "Pooling")
        .def(py::init([](int rank, const std::string& kind, std::pair<Index, Index> pool,
                         std::pair<Index, Index> strides, const std::string& padding) {
                 return std::make_shared<Pooling>(rank, pool_kind(kind), pool.first, pool.second, strides.first,
                                                  strides.second, padding);
             }),
             py::arg("rank"), py::arg("kind"), py::arg("pool_size"), py::arg("strides"), py::arg("padding"));
    py::class_<GlobalPooling, Layer, std::shared_ptr<GlobalPooling>>(m, "GlobalPooling")
        .def(py::init([](int rank, const std::string& kind, bool keepdims) {
                 return std::make_shared<GlobalPooling>(rank, pool_kind(kind), keepdims);
             }),
             py::arg("rank"), py::arg("kind"), py::arg("keepdims"));
    py::class_<Flatten, Layer, std::shared_ptr<Flatten>>(m, "Flatten").def(py::init<>());
    py::class_<Reshape, Layer, std::shared_ptr<Reshape>>(m, "Reshape").def(py::init<Shape>(), py::arg("target_shape"));
    py::class_<Permute, Layer, std::shared_ptr<Permute>>(m, "Permute")
        .def(py::init<std::vector<Index>>(), py::arg("dims"));
    py::class_<RepeatVector, Layer, std::shared_ptr<RepeatVector>>(m, "RepeatVector")
        .def(py::init<Index>(), py::arg("n"));
    py::class_<ZeroPadding, Layer, std::shared_ptr<ZeroPadding>>(m, "ZeroPadding")
        .def(py::init<int, Index, Index, Index, Index>(), py::arg("rank"), py::arg("top"), py::arg("bottom"),
             py::arg("left"), py::arg("right"));
    // Recurrent layers: units, activation, recurrent_activation, use_bias, return_sequences,
    // go_backwards, kernel/recurrent/bias initializer (and LSTM's unit_forget_bias), then keywords.
    py::class_<Recurrent, Layer, std::shared_ptr<Recurrent>>(m, "Recurrent");
    py::class_<LSTM, Recurrent, std::shared_ptr<LSTM>>(m, "LSTM").def(
        py::init([](Index units, const std::string& act, const std::string& rec_act, bool use_bias, bool seq, bool back,
                    const std::string& ki, const std::string& ri, const std::string& bi, bool ufb, bool rs, bool mask,
                    bool zero, float dp, float rdp, std::uint64_t seed) {
            return std::make_shared<LSTM>(
                options(units, act, rec_act, use_bias, seq, back, ki, ri, bi, rs, mask, zero, dp, rdp, seed), ufb);
        }),
        py::arg("units"), py::arg("activation"), py::arg("recurrent_activation"), py::arg("use_bias"),
        py::arg("return_sequences"), py::arg("go_backwards"), py::arg("kernel_initializer"),
        py::arg("recurrent_initializer"), py::arg("bias_initializer"), py::arg("unit_forget_bias"),
        py::arg("return_state") = false, py::arg("has_mask") = false, py::arg("zero_output_for_mask") = false,
        py::arg("dropout") = 0.f, py::arg("recurrent_dropout") = 0.f, py::arg("seed") = 0);
    py::class_<GRU, Recurrent, std::shared_ptr<GRU>>(m, "GRU").def(
        py::init([](Index units, const std::string& act, const std::string& rec_act, bool use_bias, bool seq, bool back,
                    const std::string& ki, const std::string& ri, const std::string& bi, bool rs, bool mask, bool zero,
                    float dp, float rdp, std::uint64_t seed, bool reset_after) {
            return std::make_shared<GRU>(
                options(units, act, rec_act, use_bias, seq, back, ki, ri, bi, rs, mask, zero, dp, rdp, seed),
                reset_after);
        }),
        py::arg("units"), py::arg("activation"), py::arg("recurrent_activation"), py::arg("use_bias"),
        py::arg("return_sequences"), py::arg("go_backwards"), py::arg("kernel_initializer"),
        py::arg("recurrent_initializer"), py::arg("bias_initializer"), py::arg("return_state") = false,
        py::arg("has_mask") = false, py::arg("zero_output_for_mask") = false, py::arg("dropout") = 0.f,
        py::arg("recurrent_dropout") = 0.f, py::arg("seed") = 0, py::arg("reset_after") = true);
    py::class_<SimpleRNN, Recurrent, std::shared_ptr<SimpleRNN>>(m, "SimpleRNN")
        .def(py::init([](Index units, const std::string& act, bool use_bias, bool seq, bool back, const std::string& ki,
                         const std::string& ri, const std::string& bi, bool rs, bool mask, bool zero, float dp,
                         float rdp, std::uint64_t seed) {
                 return std::make_shared<SimpleRNN>(
                     options(units, act, "sigmoid", use_bias, seq, back, ki, ri, bi, rs, mask, zero, dp, rdp, seed));
             }),
             py::arg("units"), py::arg("activation"), py::arg("use_bias"), py::arg("return_sequences"),
             py::arg("go_backwards"), py::arg("kernel_initializer"), py::arg("recurrent_initializer"),
             py::arg("bias_initializer"), py::arg("return_state") = false, py::arg("has_mask") = false,
             py::arg("zero_output_for_mask") = false, py::arg("dropout") = 0.f, py::arg("recurrent_dropout") = 0.f,
             py::arg("seed") = 0);
    py::class_<SpatialDropout, Layer, std::shared_ptr<SpatialDropout>>(m, "SpatialDropout")
        .def(py::init<int, float, std::uint64_t>(), py::arg("rank"), py::arg("rate"), py::arg("seed"));
    py::class_<TakeOutput, Layer, std::shared_ptr<TakeOutput>>(m, "TakeOutput")
        .def(py::init<Index, Shape>(), py::arg("offset"), py::arg("shape"));
    py::class_<Masking, Layer, std::shared_ptr<Masking>>(m, "Masking").def(py::init<float>(), py::arg("mask_value"));
    py::class_<SequenceMask, Layer, std::shared_ptr<SequenceMask>>(m, "SequenceMask")
        .def(py::init<float>(), py::arg("value"));
    py::class_<MultiHeadAttention, Layer, std::shared_ptr<MultiHeadAttention>>(m, "MultiHeadAttention")
        .def(py::init([](Index heads, Index key_dim, Index value_dim, Index output_dim, float dropout, bool use_bias,
                         bool causal, std::uint64_t seed, const std::string& ki, const std::string& bi,
                         bool return_scores) {
                 AttentionOptions o;
                 o.num_heads = heads;
                 o.key_dim = key_dim;
                 o.value_dim = value_dim;
                 o.output_dim = output_dim;
                 o.dropout = dropout;
                 o.use_bias = use_bias;
                 o.causal = causal;
                 o.return_scores = return_scores;
                 o.seed = seed;
                 o.kernel_initializer = parse_initializer(ki);
                 o.bias_initializer = parse_initializer(bi);
                 return std::make_shared<MultiHeadAttention>(o);
             }),
             py::arg("num_heads"), py::arg("key_dim"), py::arg("value_dim"), py::arg("output_dim"), py::arg("dropout"),
             py::arg("use_bias"), py::arg("use_causal_mask"), py::arg("seed"), py::arg("kernel_initializer"),
             py::arg("bias_initializer"), py::arg("return_attention_scores") = false);
    py::class_<TimeDistributed, Layer, std::shared_ptr<TimeDistributed>>(m, "TimeDistributed")
        .def(py::init<std::shared_ptr<Layer>>(), py::arg("layer"));
    py::class_<Bidirectional, Layer, std::shared_ptr<Bidirectional>>(m, "Bidirectional")
        .def(py::init([](std::shared_ptr<Layer> f, std::shared_ptr<Layer> b, const std::string& mode) {
                 return std::make_shared<Bidirectional>(std::move(f), std::move(b), merge_mode(mode));
             }),
             py::arg("forward_layer"), py::arg("backward_layer"), py::arg("merge_mode"));
}

}  // namespace maasfin::bindings
