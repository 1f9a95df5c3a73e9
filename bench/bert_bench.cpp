// BERT with all-MiniLM-L6-v2's shape (E 384, 12 heads, F 1536, 6 layers, vocab 30522) and random
// weights, through graft's nn::BertModel. Cases mirror bench/peers/bert.py one for one;
// bench/compare.sh bert runs both.
// Shape letters: B batch, S sequence length, E hidden, F intermediate, L layers, C labels.
//
// bert_train/B*_S*: one fine-tuning step of BertForSequenceClassification (pooler head, C = 2) in
// training mode (dropout on): forward, cross-entropy, backward, AdamW step.
// bert_infer/B*_S*: BertModel forward (with pooler) in eval mode under NoGradGuard.
// Every token is real (no padding), so both sides do the same work.
//
// FLOPs, the standard count (multiply-add = 2, matmuls only; embeddings, norms, softmax and
// activations are not counted): forward
//   L * (2*B*S*(4*E*E + 2*E*F)  [q, k, v, attention output, intermediate, output projections]
//        + 4*B*S*S*E)            [q k^T and probs v over all heads]
//   + 2*B*E*E (pooler) [+ 2*B*E*C (classifier), training only]
// training = 3x forward (backward ~2x forward).
#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/models/bert.h"
#include "tensor/factory.h"
#include "train/optim/adam.h"

namespace {

constexpr int64_t kLabels = 2;

graft::nn::BertConfig minilm_config() {
  graft::nn::BertConfig c;
  c.vocab_size = 30522;
  c.hidden_size = 384;
  c.num_hidden_layers = 6;
  c.num_attention_heads = 12;
  c.intermediate_size = 1536;
  c.max_position_embeddings = 512;
  return c;
}

double flops(const graft::nn::BertConfig& c, int64_t B, int64_t S, bool training) {
  const double E = double(c.hidden_size), F = double(c.intermediate_size);
  double f = c.num_hidden_layers * (2.0 * B * S * (4 * E * E + 2 * E * F) + 4.0 * B * S * S * E) + 2.0 * B * E * E;
  if (training) f = 3.0 * (f + 2.0 * B * E * kLabels);
  return f;
}

void bert_train(benchmark::State& state, int64_t B, int64_t S) {
  using namespace graft;
  manual_seed(1);
  const nn::BertConfig config = minilm_config();
  nn::BertClassifierOptions options;
  options.num_labels = kLabels;
  nn::BertForSequenceClassification model(config, options);
  model.train();
  optim::AdamW optimizer(model.parameters());
  const Tensor ids = randint(0, config.vocab_size, {B, S});
  const Tensor mask = ones({B, S}, DType::i64);
  const Tensor labels = randint(0, kLabels, {B});
  auto step = [&] {
    optimizer.zero_grad();
    Tensor loss = cross_entropy(model.forward(ids, mask), labels);
    loss.backward();
    optimizer.step();
    return loss;
  };
  if (const double loss = step().item(); !std::isfinite(loss) || loss <= 0.0) {  // warm-up, checked
    state.SkipWithError(("the warm-up loss is " + std::to_string(loss)).c_str());
    return;
  }
  for (auto _ : state) {
    Tensor loss = step();
    benchmark::DoNotOptimize(loss.data_ptr());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops(config, B, S, true) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

void bert_infer(benchmark::State& state, int64_t B, int64_t S) {
  using namespace graft;
  manual_seed(1);
  const nn::BertConfig config = minilm_config();
  nn::BertModel model(config);
  model.eval();
  const Tensor ids = randint(0, config.vocab_size, {B, S});
  const Tensor mask = ones({B, S}, DType::i64);
  NoGradGuard no_grad;
  {  // warm-up, checked: all zeros or NaN is no result
    const double norm = sum(abs(model.forward(ids, mask).last_hidden_state)).item();
    if (!std::isfinite(norm) || norm == 0.0) {
      state.SkipWithError(("the warm-up output's L1 norm is " + std::to_string(norm)).c_str());
      return;
    }
  }
  for (auto _ : state) {
    nn::BertModelOutput out = model.forward(ids, mask);
    benchmark::DoNotOptimize(out.last_hidden_state.data_ptr());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops(config, B, S, false) * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

void reg(const std::string& name, void (*run)(benchmark::State&, int64_t, int64_t), int64_t B, int64_t S) {
  benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { run(s, B, S); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  reg("bert_train/B16_S128", bert_train, 16, 128);
  reg("bert_infer/B32_S128", bert_infer, 32, 128);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
