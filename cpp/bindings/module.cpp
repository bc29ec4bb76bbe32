// pybind11 declarations only: argument conversion, GIL release around every loop, no numerics.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include <map>
#include <tuple>

#include "common.hpp"
#include "maasfin/graph.hpp"
#include "maasfin/kernels.hpp"
#include "maasfin/layers/activation.hpp"
#include "maasfin/layers/calibration.hpp"
#include "maasfin/layers/dense.hpp"
#include "maasfin/layers/dropout.hpp"
#include "maasfin/layers/merge.hpp"
#include "maasfin/layers/monotonic_dense.hpp"
#include "maasfin/layers/noise.hpp"
#include "maasfin/layers/normalization.hpp"
#include "maasfin/schedule.hpp"
#include "maasfin/trainer.hpp"

namespace py = pybind11;
using namespace maasfin;
using namespace maasfin::bindings;

namespace {
Batches batches(const Graph& g, const Loss& loss, const std::vector<FArray>& x, const FArray& y,
                const std::optional<FArray>& w, const std::optional<IArray>& order, Index batch_size) {
    require(y.ndim() >= 1, "y must have a batch dimension");
    const Index N = y.shape(0);
    check_inputs(g, x, N);
    const Index width = loss.target_width(numel(g.output_shape()));
    require(y.size() == N * width, "y has shape " + dims(y) + ", expected " + std::to_string(N) + " rows of " +
                                       std::to_string(width) + " value(s)");
    require(!w || w->size() == N, "sample_weight must hold one value per row (" + std::to_string(N) + ")");
    if (order) {
        require(order->size() == N, "order must be a permutation of the rows");
        const std::int64_t* o = order->data();
        for (Index i = 0; i < N; ++i) require(o[i] >= 0 && o[i] < N, "order holds a row index out of range");
    }
    require(batch_size > 0, "batch_size must be positive");
    Batches b;
    b.x = pointers(x);
    b.y = y.data();
    b.N = y.shape(0);
    b.y_cols = y.ndim() > 1 ? y.size() / y.shape(0) : 1;
    b.w = w ? w->data() : nullptr;
    b.order = order ? order->data() : nullptr;
    b.batch_size = batch_size;
    return b;
}

py::array_t<float> predict(const Graph& g, const std::vector<FArray>& x, Index batch_size) {
    require(g.built(), "the model is not built");
    const Index N = x.empty() || x[0].ndim() == 0 ? 0 : x[0].shape(0);
    check_inputs(g, x, N);
    std::vector<py::ssize_t> shape{N};
    for (Index d : g.output_shape()) shape.push_back(d);
    py::array_t<float> out(shape);
    auto ptrs = pointers(x);
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release nogil;
        g.predict(ptrs, N, dst, batch_size);
    }
    return out;
}

// A NumPy view of the arena that keeps the graph alive.
py::array_t<float> arena_view(py::object graph, float* data, Index n) {
    return py::array_t<float>({n}, {sizeof(float)}, data, graph);
}
}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "maasfin C++ core";
    bind_explain(m);

    m.def(
        "first_nonfinite", [](const FArray& a) { return first_nonfinite(a.data(), a.size()); },
        "Flat index of the first NaN/inf, or -1.");
    m.def("activation_names", &activation_names);
    m.def("loss_names", &loss_names);
    m.def("onednn_version", &kernels::onednn_version);

    py::enum_<kernels::Backend>(m, "Backend")
        .value("automatic", kernels::Backend::automatic)
        .value("reference", kernels::Backend::reference)
        .value("onednn", kernels::Backend::onednn);
    m.def("set_backend", &kernels::set_backend);
    m.def("get_backend", &kernels::backend);
    m.def("set_onednn_min_macs", &kernels::set_onednn_min_macs);
    m.def("onednn_min_macs", &kernels::onednn_min_macs);
    m.def("set_primitive_cache_capacity", &kernels::set_primitive_cache_capacity);
    m.def("primitive_cache_size", &kernels::primitive_cache_size);
    m.def("set_num_threads", &kernels::set_num_threads);
    m.def("num_threads", &kernels::num_threads);

    py::class_<Layer, std::shared_ptr<Layer>>(m, "Layer")
        .def_property("name", &Layer::name, &Layer::set_name)
        .def("kind", &Layer::kind)
        .def("set_trainable", &Layer::set_trainable);
    py::class_<Dense, Layer, std::shared_ptr<Dense>>(m, "Dense")
        .def(py::init(
                 [](Index units, const std::string& act, bool use_bias, const std::string& ki, const std::string& bi) {
                     return std::make_shared<Dense>(units, parse_activation(act), use_bias, parse_initializer(ki),
                                                    parse_initializer(bi));
                 }),
             py::arg("units"), py::arg("activation"), py::arg("use_bias"), py::arg("kernel_initializer"),
             py::arg("bias_initializer"));
    py::class_<ActivationLayer, Layer, std::shared_ptr<ActivationLayer>>(m, "Activation")
        .def(py::init([](const std::string& act) { return std::make_shared<ActivationLayer>(parse_activation(act)); }));
    py::class_<Dropout, Layer, std::shared_ptr<Dropout>>(m, "Dropout")
        .def(py::init<float, std::uint64_t>(), py::arg("rate"), py::arg("seed"));
    py::class_<Add, Layer, std::shared_ptr<Add>>(m, "Add").def(py::init<>());
    py::class_<ElementwiseMerge, Layer, std::shared_ptr<ElementwiseMerge>>(m, "ElementwiseMerge")
        .def(py::init([](const std::string& op) {
                 using Op = ElementwiseMerge::Op;
                 const Op o = op == "Subtract"   ? Op::subtract
                              : op == "Multiply" ? Op::multiply
                              : op == "Average"  ? Op::average
                              : op == "Maximum"  ? Op::maximum
                              : op == "Minimum"  ? Op::minimum
                                                 : throw InvalidArgument("unknown merge layer " + op);
                 return std::make_shared<ElementwiseMerge>(o);
             }),
             py::arg("kind"));
    py::class_<Dot, Layer, std::shared_ptr<Dot>>(m, "Dot").def(py::init<bool>(), py::arg("normalize"));
    py::class_<BatchNormalization, Layer, std::shared_ptr<BatchNormalization>>(m, "BatchNormalization")
        .def(py::init([](double momentum, double epsilon, bool center, bool scale, const std::string& beta,
                         const std::string& gamma, const std::string& mean, const std::string& var) {
                 return std::make_shared<BatchNormalization>(momentum, epsilon, center, scale, parse_initializer(beta),
                                                             parse_initializer(gamma), parse_initializer(mean),
                                                             parse_initializer(var));
             }),
             py::arg("momentum"), py::arg("epsilon"), py::arg("center"), py::arg("scale"), py::arg("beta_initializer"),
             py::arg("gamma_initializer"), py::arg("moving_mean_initializer"), py::arg("moving_variance_initializer"));
    py::class_<LayerNormalization, Layer, std::shared_ptr<LayerNormalization>>(m, "LayerNormalization")
        .def(py::init([](double epsilon, bool center, bool scale, const std::string& beta, const std::string& gamma) {
                 return std::make_shared<LayerNormalization>(epsilon, center, scale, parse_initializer(beta),
                                                             parse_initializer(gamma));
             }),
             py::arg("epsilon"), py::arg("center"), py::arg("scale"), py::arg("beta_initializer"),
             py::arg("gamma_initializer"));
    py::class_<NoiseLayer, Layer, std::shared_ptr<NoiseLayer>>(m, "NoiseLayer")
        .def(py::init([](const std::string& kind, double amount, std::uint64_t seed) {
                 NoiseLayer::Kind k = kind == "GaussianNoise"     ? NoiseLayer::Kind::gaussian_noise
                                      : kind == "GaussianDropout" ? NoiseLayer::Kind::gaussian_dropout
                                      : kind == "AlphaDropout" ? NoiseLayer::Kind::alpha_dropout
                                                               : throw InvalidArgument("unknown noise layer " + kind);
                 return std::make_shared<NoiseLayer>(k, amount, seed);
             }),
             py::arg("kind"), py::arg("amount"), py::arg("seed"));
    py::class_<Concatenate, Layer, std::shared_ptr<Concatenate>>(m, "Concatenate").def(py::init<>());
    py::class_<Calibration, Layer, std::shared_ptr<Calibration>>(m, "Calibration")
        .def(py::init([](const std::string& method, Index num_knots) {
                 return std::make_shared<Calibration>(parse_calibration_method(method), num_knots);
             }),
             py::arg("method"), py::arg("num_knots"));
    py::class_<MonotonicDense, Layer, std::shared_ptr<MonotonicDense>>(m, "MonotonicDense")
        .def(py::init([](Index units, const std::string& act, std::vector<int> indicator, bool is_convex,
                         bool is_concave, std::array<double, 3> activation_weights, bool use_bias,
                         const std::string& ki, const std::string& bi) {
                 return std::make_shared<MonotonicDense>(units, parse_activation(act), std::move(indicator), is_convex,
                                                         is_concave, activation_weights, use_bias,
                                                         parse_initializer(ki), parse_initializer(bi));
             }),
             py::arg("units"), py::arg("activation"), py::arg("monotonicity_indicator"), py::arg("is_convex"),
             py::arg("is_concave"), py::arg("activation_weights"), py::arg("use_bias"), py::arg("kernel_initializer"),
             py::arg("bias_initializer"))
        .def("split", &MonotonicDense::split);
    m.def("activation_is_monotone",
          [](const std::string& act) { return activation_is_monotone(parse_activation(act)); });
    bind_preprocessing(m);  // after Layer: its classes derive from it

    bind_sequence_layers(m);

    py::class_<Graph, std::shared_ptr<Graph>>(m, "Graph")
        .def(py::init<>())
        .def("add_input", &Graph::add_input)
        .def("add_layer", &Graph::add_layer)
        .def("build", &Graph::build, py::arg("output"), py::arg("seed"), py::arg("max_params") = -1)
        .def_property_readonly("built", &Graph::built)
        .def("node_shape", [](const Graph& g, int id) { return g.node_shape(id); })
        .def("node_inputs", [](const Graph& g, int id) { return g.node_inputs(id); })
        .def("input_shape", [](const Graph& g, int i) { return g.input_shape(i); })
        .def_property_readonly("output_shape", [](const Graph& g) { return g.output_shape(); })
        .def_property_readonly("param_count", &Graph::param_count)
        .def("layer_params",
             [](const Graph& g, int id) {
                 py::list out;
                 for (const ParamSpec& p : g.layer_params(id)) out.append(py::make_tuple(p.name, p.shape, p.offset));
                 return out;
             })
        .def("layer_params_trainable",
             [](const Graph& g, int id) {
                 std::vector<bool> out;
                 for (const ParamSpec& p : g.layer_params(id)) out.push_back(p.trainable);
                 return out;
             })
        .def_property_readonly("params",
                               [](py::object self) {
                                   Graph& g = self.cast<Graph&>();
                                   return arena_view(self, g.params(), g.param_count());
                               })
        .def_property_readonly("grads",
                               [](py::object self) {
                                   Graph& g = self.cast<Graph&>();
                                   return arena_view(self, g.grads(), g.param_count());
                               })
        .def("set_activity_regularizer", &Graph::set_activity_regularizer, py::arg("node"), py::arg("l1"),
             py::arg("l2"))
        .def_property_readonly("auto_tile", &Graph::auto_tile)
        .def("predict", &predict, py::arg("x"), py::arg("batch_size"));

    py::class_<Optimizer, std::shared_ptr<Optimizer>>(m, "Optimizer")
        .def_readwrite("learning_rate", &Optimizer::learning_rate)
        .def("current_learning_rate", &Optimizer::current_learning_rate)
        .def("set_schedule", &Optimizer::set_schedule)
        .def("set_options", &Optimizer::set_options)
        .def_readwrite("iterations", &Optimizer::iterations)
        .def("slot_names", &Optimizer::slot_names)
        .def("slot_sizes", &Optimizer::slot_sizes, py::arg("n"),
             "{slot name: size} for an arena of n parameters (n, or 0 for a slot this configuration never uses).")
        .def("get_slot",
             [](Optimizer& o, const std::string& name) {
                 const FloatVec& v = o.slot(name);
                 py::array_t<float> out(static_cast<py::ssize_t>(v.size()));
                 std::copy(v.begin(), v.end(), out.mutable_data());
                 return out;
             })
        .def(
            "set_slots",
            [](Optimizer& o, Index n, const std::map<std::string, FArray>& values) {
                std::vector<std::pair<std::string, FloatVec>> v;
                for (const auto& [name, arr] : values)
                    v.emplace_back(name, FloatVec(arr.data(), arr.data() + arr.size()));
                o.set_slots(n, v);
            },
            py::arg("n"), py::arg("values"),
            "Replaces the state for an arena of n parameters: {slot name: values (n, or 0 if unused)}.");
    m.def("SGD", &make_sgd, py::arg("learning_rate"), py::arg("momentum"), py::arg("nesterov"));
    m.def("Adam", &make_adam, py::arg("learning_rate"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"),
          py::arg("amsgrad"));
    m.def("RMSprop", &make_rmsprop, py::arg("learning_rate"), py::arg("rho"), py::arg("momentum"), py::arg("epsilon"),
          py::arg("centered"));
    m.def("Adagrad", &make_adagrad, py::arg("learning_rate"), py::arg("initial_accumulator_value"), py::arg("epsilon"));
    m.def("Adamax", &make_adamax, py::arg("learning_rate"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"));
    m.def("Nadam", &make_nadam, py::arg("learning_rate"), py::arg("beta_1"), py::arg("beta_2"), py::arg("epsilon"));

    py::class_<ScheduleSpec>(m, "ScheduleSpec")
        .def(
            py::init([](const std::string& kind, double initial_learning_rate, double decay_steps, double decay_rate,
                        bool staircase, std::vector<double> boundaries, std::vector<double> values, double alpha,
                        double warmup_target, double warmup_steps, double end_learning_rate, double power, bool cycle) {
                ScheduleSpec s{kind,          initial_learning_rate, decay_steps,       decay_rate,
                               staircase,     std::move(boundaries), std::move(values), alpha,
                               warmup_target, warmup_steps,          end_learning_rate, power,
                               cycle};
                check_schedule(s);
                return s;
            }),
            py::arg("kind"), py::arg("initial_learning_rate") = 0.0, py::arg("decay_steps") = 1.0,
            py::arg("decay_rate") = 0.0, py::arg("staircase") = false, py::arg("boundaries") = std::vector<double>{},
            py::arg("values") = std::vector<double>{}, py::arg("alpha") = 0.0, py::arg("warmup_target") = -1.0,
            py::arg("warmup_steps") = 0.0, py::arg("end_learning_rate") = 0.0001, py::arg("power") = 1.0,
            py::arg("cycle") = false)
        .def("__call__", [](const ScheduleSpec& s, double step) { return schedule_value(s, step); });
    py::class_<OptimizerOptions>(m, "OptimizerOptions")
        .def(py::init([](double weight_decay, double clipnorm, double clipvalue, double global_clipnorm) {
                 return OptimizerOptions{weight_decay, clipnorm, clipvalue, global_clipnorm};
             }),
             py::arg("weight_decay") = 0.0, py::arg("clipnorm") = 0.0, py::arg("clipvalue") = 0.0,
             py::arg("global_clipnorm") = 0.0);

    m.def(
        "optimizer_step",
        [](Optimizer& opt, py::array_t<float, py::array::c_style> params, const FArray& grads) {
            require(grads.size() == params.size(), "optimizer_step: params has " + std::to_string(params.size()) +
                                                       " values but grads has " + std::to_string(grads.size()));
            FloatVec g(grads.data(), grads.data() + grads.size());  // clipping works in place
            opt.step(params.mutable_data(), g.data(), params.size());
        },
        py::arg("optimizer"), py::arg("params").noconvert(), py::arg("grads"),
        "One update of a flat, C-contiguous float32 parameter vector in place (for tests and standalone use).");

    py::class_<LossSpec>(m, "LossSpec")
        .def(py::init([](const std::string& name, bool from_logits, double label_smoothing, double delta, double alpha,
                         double gamma, bool apply_class_balancing, const std::string& reduction) {
                 return LossSpec{name,  from_logits, label_smoothing,       delta,
                                 alpha, gamma,       apply_class_balancing, reduction};
             }),
             py::arg("name"), py::arg("from_logits") = false, py::arg("label_smoothing") = 0.0, py::arg("delta") = 1.0,
             py::arg("alpha") = 0.25, py::arg("gamma") = 2.0, py::arg("apply_class_balancing") = false,
             py::arg("reduction") = "sum_over_batch_size")
        .def_readonly("name", &LossSpec::name)
        .def_readonly("reduction", &LossSpec::reduction);

    m.def(
        "loss_compute",
        [](const LossSpec& spec, const FArray& y_true, const FArray& y_pred, std::optional<FArray> w) {
            auto loss = make_loss(spec);
            const std::string& name = spec.name;
            require(y_pred.ndim() >= 1 && y_pred.shape(0) > 0, "y_pred must have at least one row");
            const Index N = y_pred.shape(0), D = y_pred.size() / N;
            require(y_true.size() == N * loss->target_width(D),
                    name + ": y_true has shape " + dims(y_true) + " but y_pred " + dims(y_pred) + " needs " +
                        std::to_string(loss->target_width(D)) + " target value(s) per row");
            require(!w || w->size() == N, name + ": sample_weight has " + std::to_string(w ? w->size() : 0) +
                                              " values for " + std::to_string(N) + " rows");
            py::array_t<float> grad(std::vector<py::ssize_t>(y_pred.shape(), y_pred.shape() + y_pred.ndim()));
            py::array_t<double> per_sample(N);
            const double loss_value = loss->reduced(y_pred.data(), y_true.data(), w ? w->data() : nullptr, N, D,
                                                    grad.mutable_data(), per_sample.mutable_data());
            return py::make_tuple(loss_value, grad, per_sample);
        },
        py::arg("spec"), py::arg("y_true"), py::arg("y_pred"), py::arg("sample_weight"),
        "(reduced batch loss, its gradient w.r.t. y_pred, unweighted per-sample losses).");

    py::class_<MetricSpec>(m, "MetricSpec")
        .def(py::init([](const std::string& kind, std::vector<float> thresholds, Index k, Index class_id, double beta,
                         const std::string& average, bool from_logits, Index top_k, bool multi_label,
                         std::vector<float> label_weights, Index n_bins, const std::string& strategy) {
                 return MetricSpec{
                     kind,        std::move(thresholds),    k,      class_id, beta, average, from_logits, top_k,
                     multi_label, std::move(label_weights), n_bins, strategy};
             }),
             py::arg("kind"), py::arg("thresholds") = std::vector<float>{}, py::arg("k") = 5, py::arg("class_id") = -1,
             py::arg("beta") = 1.0, py::arg("average") = "", py::arg("from_logits") = false, py::arg("top_k") = 0,
             py::arg("multi_label") = false, py::arg("label_weights") = std::vector<float>{}, py::arg("n_bins") = 10,
             py::arg("strategy") = "uniform");
    py::class_<Metric, std::shared_ptr<Metric>>(m, "Metric")
        .def(py::init([](const MetricSpec& spec) { return std::shared_ptr<Metric>(make_metric(spec)); }))
        .def(
            "update",
            [](Metric& mt, const FArray& y_pred, const FArray& y_true, std::optional<FArray> w) {
                require(y_pred.ndim() == 2, "y_pred must be 2-D (rows, outputs), got " + dims(y_pred));
                const Index N = y_pred.shape(0), D = y_pred.shape(1);
                require(y_true.size() == N * mt.target_width(D),
                        "y_true has shape " + dims(y_true) + " but y_pred " + dims(y_pred) + " needs " +
                            std::to_string(mt.target_width(D)) + " target value(s) per row");
                require(!w || w->size() == N, "sample_weight must hold one value per row");
                mt.update(y_pred.data(), y_true.data(), w ? w->data() : nullptr, N, D, mt.target_width(D));
            },
            py::arg("y_pred"), py::arg("y_true"), py::arg("sample_weight") = py::none())
        .def("result", &Metric::result)
        .def("reset", &Metric::reset)
        .def("target_width", &Metric::target_width);

    py::class_<Trainer, std::shared_ptr<Trainer>>(m, "Trainer")
        .def(py::init([](std::shared_ptr<Graph> g, const LossSpec& loss, std::shared_ptr<Optimizer> opt,
                         const std::vector<std::tuple<std::string, std::shared_ptr<Metric>, bool>>& metrics,
                         const std::vector<std::pair<Index, Index>>& trainable) {
                 std::vector<CompiledMetric> ms;
                 for (const auto& [name, metric, weighted] : metrics) {
                     require(metric != nullptr, "metric '" + name + "' is None");
                     ms.push_back({name, metric, weighted});
                 }
                 std::vector<Range> ranges;
                 for (const auto& [b, e] : trainable) {
                     require(b >= 0 && b <= e && e <= g->param_count(), "trainable range out of the arena");
                     ranges.push_back({b, e});
                 }
                 return std::make_shared<Trainer>(std::move(g), make_loss(loss), std::move(opt), std::move(ms),
                                                  std::move(ranges));
             }),
             py::arg("graph"), py::arg("loss"), py::arg("optimizer"), py::arg("metrics"),
             py::arg("trainable") = std::vector<std::pair<Index, Index>>{})
        .def(
            "train",
            [](Trainer& t, const std::vector<FArray>& x, const FArray& y, std::optional<FArray> w,
               std::optional<IArray> order, Index batch_size, Index first, Index last, std::uint64_t seed,
               std::optional<std::function<bool(Index, double)>> progress) {
                Batches b = batches(t.graph(), t.loss(), x, y, w, order, batch_size);
                ProgressFn fn;
                if (progress)
                    fn = [&](Index done, double loss) {
                        py::gil_scoped_acquire gil;
                        return (*progress)(done, loss);
                    };
                py::gil_scoped_release nogil;
                return t.train(b, first, last, seed, fn);
            },
            py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("order"), py::arg("batch_size"),
            py::arg("first"), py::arg("last"), py::arg("seed"), py::arg("progress") = py::none())
        .def(
            "evaluate",
            [](Trainer& t, const std::vector<FArray>& x, const FArray& y, std::optional<FArray> w, Index batch_size,
               Index first, Index last) {
                Batches b = batches(t.graph(), t.loss(), x, y, w, std::nullopt, batch_size);
                py::gil_scoped_release nogil;
                t.evaluate(b, first, last);
            },
            py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("batch_size"), py::arg("first") = 0,
            py::arg("last") = -1)
        .def("compute_gradients",
             [](Trainer& t, const std::vector<FArray>& x, const FArray& y, std::optional<FArray> w, bool training,
                std::uint64_t seed) {
                 Batches b =
                     batches(t.graph(), t.loss(), x, y, w, std::nullopt, std::max<Index>(1, y.ndim() ? y.shape(0) : 1));
                 py::gil_scoped_release nogil;
                 return t.compute_gradients(b, training, seed);
             })
        .def(
            "set_regularization",
            [](Trainer& t, const std::vector<std::tuple<Index, Index, double, double>>& penalties,
               const std::vector<std::tuple<std::string, Index, Index, Index, Index, bool, double, double, double>>&
                   cons) {
                std::vector<Penalty> ps;
                for (const auto& [b, e, l1, l2] : penalties) ps.push_back({{b, e}, l1, l2});
                std::vector<Constraint> cs;
                for (const auto& [kind, b, e, rows, cols, over_rows, lo, hi, rate] : cons)
                    cs.push_back({kind, {b, e}, rows, cols, over_rows, lo, hi, rate});
                t.set_regularization(std::move(ps), std::move(cs));
            },
            py::arg("penalties"), py::arg("constraints"),
            "penalties: (begin, end, l1, l2); constraints: (kind, begin, end, rows, cols, over_rows, min, max, rate)")
        .def("set_stop_on_nonfinite", &Trainer::set_stop_on_nonfinite)
        .def("stopped_on_nonfinite", &Trainer::stopped_on_nonfinite)
        .def("reset_metrics", &Trainer::reset_metrics)
        .def("results", &Trainer::results);
}
