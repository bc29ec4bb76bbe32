// The optimizer step shared by every optimizer: clipping, weight decay, schedules, state slots.
#include "maasfin/optimizer.hpp"

#include <algorithm>
#include <cmath>

namespace maasfin {

namespace {
template <class Fn>
void for_ranges(Index n, const std::vector<Range>& ranges, Fn fn) {
    if (ranges.empty()) {
        fn(Index{0}, n);
        return;
    }
    for (const Range& r : ranges) fn(r.begin, r.end);
}
}  // namespace

double Optimizer::current_learning_rate() const {
    return schedule_ ? schedule_value(*schedule_, static_cast<double>(iterations)) : learning_rate;
}

void Optimizer::set_schedule(std::optional<ScheduleSpec> schedule) {
    if (schedule) check_schedule(*schedule);
    schedule_ = std::move(schedule);
}

void Optimizer::set_options(const OptimizerOptions& o) {
    if (!(o.weight_decay >= 0)) throw InvalidArgument("weight_decay must be >= 0");
    if (!(o.clipnorm >= 0) || !(o.clipvalue >= 0) || !(o.global_clipnorm >= 0))
        throw InvalidArgument("clipnorm, clipvalue and global_clipnorm must be > 0 when set");
    if ((o.clipnorm > 0) + (o.clipvalue > 0) + (o.global_clipnorm > 0) > 1)
        throw InvalidArgument("Only one of clipnorm, clipvalue and global_clipnorm can be set");
    options_ = o;
}

namespace {
// Sum of squares with eight float lanes (vectorisable) folded into a double per block.
double sum_squares(const float* v, Index n) {
    double total = 0.0;
    constexpr Index kBlock = 4096;
    for (Index b = 0; b < n; b += kBlock) {
        const Index e = std::min(n, b + kBlock);
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        Index i = b;
        for (; i + 8 <= e; i += 8)
            for (int k = 0; k < 8; ++k) lanes[k] += v[i + k] * v[i + k];
        for (; i < e; ++i) lanes[0] += v[i] * v[i];
        for (float l : lanes) total += l;
    }
    return total;
}
}  // namespace

void Optimizer::clip(float* g, Index n, const std::vector<Range>& ranges, const std::vector<Range>& variables) const {
    const OptimizerOptions& o = options_;
    if (o.clipvalue > 0) {
        const float c = static_cast<float>(o.clipvalue);
        for_ranges(n, ranges, [&](Index b, Index e) {
            for (Index i = b; i < e; ++i) g[i] = std::clamp(g[i], -c, c);
        });
    } else if (o.global_clipnorm > 0) {
        double sq = 0;
        for_ranges(n, ranges, [&](Index b, Index e) { sq += sum_squares(g + b, e - b); });
        const double norm = std::sqrt(sq);
        if (norm <= o.global_clipnorm) return;
        const float scale = static_cast<float>(o.global_clipnorm / norm);
        for_ranges(n, ranges, [&](Index b, Index e) {
            for (Index i = b; i < e; ++i) g[i] *= scale;
        });
    } else if (o.clipnorm > 0) {
        const std::vector<Range> whole{{0, n}};
        for (const Range& v : variables.empty() ? whole : variables) {
            const double norm = std::sqrt(sum_squares(g + v.begin, v.end - v.begin));
            if (norm <= o.clipnorm) continue;
            const float scale = static_cast<float>(o.clipnorm / norm);
            for (Index i = v.begin; i < v.end; ++i) g[i] *= scale;
        }
    }
}

void Optimizer::step(float* params, float* grads, Index n, const std::vector<Range>& ranges,
                     const std::vector<Range>& variables) {
    if (state_size_ != n) {
        init_state(n);
        state_size_ = n;
    }
    const std::int64_t t = iterations + 1;
    const float lr = static_cast<float>(current_learning_rate());
    clip(grads, n, ranges, variables);
    const float* g = grads;
    if (options_.weight_decay > 0) {
        const float decay = static_cast<float>(options_.weight_decay) * lr;
        for_ranges(n, ranges, [&](Index b, Index e) {
            for (Index i = b; i < e; ++i) params[i] -= params[i] * decay;
        });
    }
    for_ranges(n, ranges, [&](Index b, Index e) { update(params, g, b, e, t, lr); });
    ++iterations;
}

void Optimizer::init_state(Index n) {
    for (const Slot& s : slots()) s.values->assign(s.used ? static_cast<std::size_t>(n) : 0, s.initial);
}

std::vector<std::string> Optimizer::slot_names() {
    std::vector<std::string> names;
    for (const Slot& s : slots()) names.push_back(s.name);
    return names;
}

std::map<std::string, Index> Optimizer::slot_sizes(Index n) {
    if (n < 0) throw InvalidArgument("slot_sizes: the number of parameters must be >= 0, got " + std::to_string(n));
    std::map<std::string, Index> sizes;
    for (const Slot& s : slots()) sizes[s.name] = s.used ? n : 0;
    return sizes;
}

const FloatVec& Optimizer::slot(const std::string& name) {
    for (const Slot& s : slots())
        if (s.name == name) return *s.values;
    throw InvalidArgument("optimizer has no state slot '" + name + "'");
}

void Optimizer::set_slots(Index n, const std::vector<std::pair<std::string, FloatVec>>& values) {
    const std::vector<Slot> own = slots();
    for (const auto& [vn, _] : values)
        if (std::none_of(own.begin(), own.end(), [&](const Slot& s) { return s.name == vn; }))
            throw InvalidArgument("optimizer state has an unknown slot '" + vn + "'");
    init_state(n);
    for (const Slot& s : own) {
        const FloatVec* given = nullptr;
        for (const auto& [vn, vv] : values)
            if (vn == s.name) given = &vv;
        if (!given) throw InvalidArgument("optimizer state is missing slot '" + s.name + "'");
        if (given->size() != s.values->size())
            throw InvalidArgument("optimizer state slot '" + s.name + "' has " + std::to_string(given->size()) +
                                  " values, expected " + std::to_string(s.values->size()));
        *s.values = *given;
    }
    state_size_ = n;
}

}  // namespace maasfin
