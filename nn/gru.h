// GRU and GRUCell modules, torch.nn.GRU / torch.nn.GRUCell compatible: same options, same
// parameter names and layouts (gate rows r, z, n), so a PyTorch state_dict loads unchanged.
//
// GRU parameters, for each layer k and direction (suffix "" or "_reverse"), in this order:
//   weight_ih_l{k}[_reverse] [3H, I_k]  (I_0 = input_size, I_k = D*H above)
//   weight_hh_l{k}[_reverse] [3H, H]
//   bias_ih_l{k}[_reverse]   [3H]       (with bias)
//   bias_hh_l{k}[_reverse]   [3H]
// which is also the order graft::gru's params expects (flat_parameters()).
#pragma once

#include <string>
#include <vector>

#include "autograd/gru.h"
#include "nn/module.h"

namespace graft::nn {

struct GRUOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  // between layers while training; has no effect with one layer (torch warns, graft does nothing)
  bool bidirectional = false;
  bool enforce_sorted = true;  // lengths passed to forward must be sorted longest first (as torch's packing)
  DType dtype = DType::f32;
};

class GRU : public Module {
 public:
  explicit GRU(GRUOptions options);

  // input [T, N, I] ([N, T, I] with batch_first) or unbatched [T, I]; h0 [L*D, N, H] ([L*D, H]
  // unbatched) or undefined (zeros); lengths [N] integers in [1, T], any order, or undefined.
  GruResult forward(const Tensor& input, const Tensor& h0, const Tensor& lengths = Tensor());
  Tensor forward(const Tensor& input) override;  // the output only, for Sequential

  // PyTorch: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
  void reset_parameters() override;
  // As torch: "4, 6, num_layers=2, batch_first=true, bidirectional=true" (defaults omitted).
  std::string extra_repr() const override;

  std::vector<Tensor> flat_parameters() const { return flat_; }
  void set_implementation(GruImplementation implementation) { implementation_ = implementation; }
  GruImplementation implementation() const { return implementation_; }
  const GRUOptions& options() const { return options_; }

 private:
  GRUOptions options_;
  GruImplementation implementation_ = GruImplementation::automatic;
  std::vector<Tensor> flat_;  // handles of the registered parameters, in gru()'s order
};

struct GRUCellOptions {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  bool bias = true;
  DType dtype = DType::f32;
};

class GRUCell : public Module {
 public:
  explicit GRUCell(GRUCellOptions options);
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true)
      : GRUCell(GRUCellOptions{input_size, hidden_size, bias}) {}

  // input [N, I] or [I]; hx [N, H] / [H] or undefined (zeros) -> [N, H] / [H].
  Tensor forward(const Tensor& input, const Tensor& hx);
  Tensor forward(const Tensor& input) override { return forward(input, Tensor()); }

  void reset_parameters() override;  // U(-1/sqrt(H), 1/sqrt(H)), as torch
  std::string extra_repr() const override;  // "4, 6" (", bias=false" without bias)
  const GRUCellOptions& options() const { return options_; }

  Tensor weight_ih;  // [3H, I]
  Tensor weight_hh;  // [3H, H]
  Tensor bias_ih;    // [3H], undefined without bias
  Tensor bias_hh;

 private:
  GRUCellOptions options_;
};

}  // namespace graft::nn
