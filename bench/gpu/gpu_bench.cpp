// graft's side of the GPU benchmarks: the cases of bench/peers/gpu.py one for one, on one device,
// one JSON line per case on stdout, the format bench/peers/timing.py prints:
//   {"case": ..., "ms": <median>, "gflops": <at the median>} (or "gbps" for memory-bound cases)
// bench/gpu/run_all.sh runs both sides on the same GPU and prints the ratios.
//
//   graft_bench_gpu [--device cuda|cpu] [--quick] [--filter SUBSTRING]
// --device cpu runs the same program on the CPU (to check the harness where there is no GPU);
// --quick shrinks every case so that a CPU run takes seconds.
//
// Timing: a checked warm-up call, then repeated calls until 1 s and 5 runs have passed, each
// ended by cuda_synchronize() (kernels are asynchronous), the median reported. Inputs are made
// outside the timed region. FLOPs: GEMM 2*M*N*K; attention forward 4*B*H*S^2*D, forward+backward
// 3.5x that; GRU training 3 * 2*T*N*3H*(I+H) per layer; BERT as bench/bert_bench.cpp. Bytes for
// memory-bound cases count each tensor read or written once.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "graft.h"
#include "kernels/gemm/gemm.h"

namespace {

using namespace graft;

struct Settings {
  Device device = Device::cuda(0);
  bool quick = false;
  std::string filter;
};
Settings settings;

void sync() {
  if (settings.device.is_cuda()) cuda_synchronize(settings.device);
}

Tensor input(const Shape& shape, DType dtype = DType::f32, bool requires_grad = false, uint64_t seed = 1) {
  Generator gen(seed);
  Tensor t = randn(shape, DType::f32, &gen).to(dtype).to(settings.device);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

// Runs `step` (warm-up first, checked by `check` when given) and prints the case's line.
void timed(const std::string& name, const std::function<void()>& step, double flops, double bytes = 0) {
  if (!settings.filter.empty() && name.find(settings.filter) == std::string::npos) return;
  try {
    step();
    sync();
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    while (elapsed() < 1.0 || times.size() < 5) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      sync();
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2] * 1e3;
    if (bytes > 0)
      std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"gbps\": %.2f, \"runs\": %zu}\n", name.c_str(), ms,
                  bytes / (ms * 1e-3) * 1e-9, times.size());
    else
      std::printf("{\"case\": \"%s\", \"ms\": %.4f, \"gflops\": %.2f, \"runs\": %zu}\n", name.c_str(), ms,
                  flops / (ms * 1e-3) * 1e-9, times.size());
  } catch (const std::exception& e) {
    std::string message = e.what();  // kept valid JSON: quotes, backslashes and newlines become apostrophes
    for (char& ch : message)
      if (ch == '"' || ch == '\\' || ch == '\n') ch = '\'';
    std::printf("{\"case\": \"%s\", \"error\": \"%s\"}\n", name.c_str(), message.c_str());
  }
  std::fflush(stdout);
}

void require_finite(const Tensor& t, const std::string& what) {
  const double s = sum(abs(t.detach().to(DType::f32))).item();
  if (!std::isfinite(s)) throw NumericError(what + ": the warm-up result is not finite");
}

void gemm_cases() {
  const int64_t n = settings.quick ? 128 : 4096;
  const std::string size = std::to_string(n);
  const double flops = 2.0 * n * n * n;
  NoGradGuard no_grad;
  for (auto [tag, dtype, tf32] : {std::tuple{"f32", DType::f32, false}, std::tuple{"tf32", DType::f32, true},
                                  std::tuple{"bf16", DType::bf16, false}}) {
    if (settings.device.is_cpu() && dtype != DType::f32) continue;  // the CPU GEMM is f32/f64 only
    const Tensor a = input({n, n}, dtype, false, 1), b = input({n, n}, dtype, false, 2);
    kernels::set_cuda_allow_tf32(tf32);
    timed(std::string("matmul_") + tag + "/" + size, [&] { matmul(a, b); }, flops);
    kernels::set_cuda_allow_tf32(false);
  }
  const int64_t M = settings.quick ? 256 : 8192, K = settings.quick ? 64 : 1024, N = settings.quick ? 128 : 4096;
  const DType dtype = settings.device.is_cpu() ? DType::f32 : DType::bf16;
  const Tensor x = input({M, K}, dtype, false, 3), w = input({N, K}, dtype, false, 4), bias = input({N}, dtype, false, 5);
  timed("linear_bias_" + std::string(dtype_name(dtype)) + "/M" + std::to_string(M) + "_K" + std::to_string(K) + "_N" +
            std::to_string(N),
        [&] { linear(x, w, bias); }, 2.0 * M * N * K);
}

void attention_case(const std::string& tag, DType dtype, int64_t B, int64_t H, int64_t S, int64_t D, bool backward) {
  const double fwd = 4.0 * B * H * S * S * D;
  const std::string name = std::string(backward ? "attention_fwdbwd_" : "attention_fwd_") + tag + "/B" +
                           std::to_string(B) + "_H" + std::to_string(H) + "_S" + std::to_string(S) + "_D" +
                           std::to_string(D);
  const Tensor q = input({B, H, S, D}, dtype, backward, 6), k = input({B, H, S, D}, dtype, backward, 7),
               v = input({B, H, S, D}, dtype, backward, 8), dout = input({B, H, S, D}, dtype, false, 9);
  if (!backward) {
    NoGradGuard no_grad;
    timed(name, [&] { scaled_dot_product_attention(q, k, v); }, fwd);
    return;
  }
  timed(name, [&] {
    Tensor out = scaled_dot_product_attention(q, k, v);
    out.backward(dout);
    for (const Tensor* t : {&q, &k, &v}) t->set_grad(Tensor());
  }, 3.5 * fwd);
}

void attention_cases() {
  if (settings.quick) {
    attention_case("f32", DType::f32, 2, 2, 64, 32, false);
    attention_case("f32", DType::f32, 2, 2, 64, 32, true);
    return;
  }
  // issue 8's shape: 16k tokens, hidden 2048 (16 heads of 128), and MiniLM's (12 heads of 32) in f32.
  attention_case("bf16", DType::bf16, 8, 16, 2048, 128, false);
  attention_case("bf16", DType::bf16, 8, 16, 2048, 128, true);
  attention_case("f32", DType::f32, 32, 12, 128, 32, true);
}

void memory_bound_cases() {
  const int64_t R = settings.quick ? 256 : 16384, C = settings.quick ? 128 : 1024;
  const std::string shape = "/R" + std::to_string(R) + "_C" + std::to_string(C);
  const double tensor_bytes = 4.0 * R * C;
  {
    const Tensor x = input({R, C}, DType::f32, true, 10), dy = input({R, C}, DType::f32, false, 11);
    const Tensor w = input({C}, DType::f32, true, 12), b = input({C}, DType::f32, true, 13);
    timed("layer_norm_fwdbwd_f32" + shape, [&] {
      layer_norm(x, {C}, w, b, 1e-12).backward(dy);
      for (const Tensor* t : {&x, &w, &b}) t->set_grad(Tensor());
    }, 0, 5 * tensor_bytes);  // forward: x in, y out; backward: dy, x in, dx out
  }
  {
    NoGradGuard no_grad;
    const Tensor x = input({R, C}, DType::f32, false, 14);
    timed("softmax_f32" + shape, [&] { softmax(x, -1); }, 0, 2 * tensor_bytes);
  }
  {
    const int64_t N = settings.quick ? 64 : 4096, V = settings.quick ? 1000 : 30522;
    const Tensor logits = input({N, V}, DType::f32, true, 15);
    const Tensor labels = randint(0, V, {N}).to(settings.device);
    timed("cross_entropy_fwdbwd_f32/N" + std::to_string(N) + "_C" + std::to_string(V), [&] {
      cross_entropy(logits, labels).backward();
      logits.set_grad(Tensor());
    }, 0, 3 * 4.0 * N * V);  // logits read twice (forward, backward), their gradient written
  }
  {
    const int64_t tensors = settings.quick ? 4 : 50, rows = 384, cols = settings.quick ? 64 : 1536;
    std::vector<Tensor> params;
    for (int64_t i = 0; i < tensors; ++i) {
      Tensor p = input({rows, cols}, DType::f32, true, 100 + static_cast<uint64_t>(i));
      p.set_grad(input({rows, cols}, DType::f32, false, 200 + static_cast<uint64_t>(i)));
      params.push_back(p);
    }
    optim::AdamW optimizer(params);
    const double numel = double(tensors * rows * cols);
    timed("adamw_f32/" + std::to_string(int64_t(numel)), [&] { optimizer.step(); }, 0, 7 * 4.0 * numel);  // p, g, m, v in; p, m, v out
  }
}

void gru_case(int64_t T, int64_t N, int64_t H) {
  nn::GRUOptions options;
  options.input_size = H;
  options.hidden_size = H;
  nn::GRU gru(options);
  gru.to(settings.device);
  const Tensor x = input({T, N, H}, DType::f32, false, 16);
  timed("gru_train_f32/T" + std::to_string(T) + "_N" + std::to_string(N) + "_H" + std::to_string(H), [&] {
    Tensor y = gru.forward(x, Tensor()).output;
    sum(y).backward();
    for (const Tensor& p : gru.parameters()) p.set_grad(Tensor());
  }, 3.0 * 2.0 * T * N * 3 * H * (2 * H));
}

void gru_cases() {
  if (settings.quick) return gru_case(5, 4, 32);
  gru_case(50, 32, 512);
  gru_case(187, 32, 1536);
}

void bert_case(int64_t B, int64_t S, bool bf16) {
  nn::BertConfig c;
  c.vocab_size = 30522;
  c.hidden_size = 384;
  c.num_hidden_layers = settings.quick ? 1 : 6;
  c.num_attention_heads = 12;
  c.intermediate_size = 1536;
  c.max_position_embeddings = 512;
  manual_seed(1);
  nn::BertClassifierOptions options;
  options.num_labels = 2;
  nn::BertForSequenceClassification model(c, options);
  model.to(settings.device);
  model.train();
  optim::AdamW optimizer(model.parameters());
  const Tensor ids = randint(0, c.vocab_size, {B, S}).to(settings.device);
  const Tensor mask = ones({B, S}, DType::i64).to(settings.device);
  const Tensor labels = randint(0, 2, {B}).to(settings.device);
  const double E = double(c.hidden_size), F = double(c.intermediate_size);
  const double fwd = c.num_hidden_layers * (2.0 * B * S * (4 * E * E + 2 * E * F) + 4.0 * B * S * S * E) + 2.0 * B * E * E;
  bool first = true;
  timed(std::string("bert_train_") + (bf16 ? "bf16" : "f32") + "/B" + std::to_string(B) + "_S" + std::to_string(S), [&] {
    optimizer.zero_grad();
    std::optional<AutocastGuard> autocast;
    if (bf16) autocast.emplace(DType::bf16);
    Tensor loss = cross_entropy(model.forward(ids, mask), labels);
    autocast.reset();
    loss.backward();
    optimizer.step();
    if (first) require_finite(loss, "bert_train"), first = false;
  }, 3.0 * (fwd + 2.0 * B * E * 2));
}

void bert_cases() {
  const int64_t B = settings.quick ? 2 : 32, S = settings.quick ? 16 : 128;
  bert_case(B, S, false);
  bert_case(B, S, true);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      const std::string d = argv[++i];
      settings.device = d == "cpu" ? Device::cpu() : Device::cuda(0);
    } else if (arg == "--quick") {
      settings.quick = true;
    } else if (arg == "--filter" && i + 1 < argc) {
      settings.filter = argv[++i];
    } else {
      std::fprintf(stderr, "usage: graft_bench_gpu [--device cuda|cpu] [--quick] [--filter SUBSTRING]\n");
      return 2;
    }
  }
  if (settings.device.is_cuda() && !cuda_is_available()) {
    std::fprintf(stderr, "graft_bench_gpu: no CUDA device (use --device cpu to check the harness)\n");
    return 1;
  }
  std::fprintf(stderr, "graft_bench_gpu on %s%s\n", settings.device.str().c_str(), settings.quick ? " (quick sizes)" : "");
  gemm_cases();
  attention_cases();
  memory_bound_cases();
  gru_cases();
  bert_cases();
  return 0;
}
