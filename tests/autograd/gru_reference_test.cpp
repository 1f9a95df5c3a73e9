// graft::gru's reference path: PyTorch goldens (tests/golden/make_gru_golden.py) for outputs,
// h_n and every gradient, in f64 and f32; f64 gradchecks including bidirectional, multi-layer,
// variable lengths and dropout; dispatch; and the errors of bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/gradcheck_helpers.h"
#include "autograd/gru.h"
#include "golden/gru_golden.h"

using namespace graft;
using graft::testing::rnd;
using nlohmann::json;
using graft::test::expect_close;
using graft::test::golden_tensor;
using graft::test::load_gru_golden;

namespace {


GruOptions options_of(const json& config) {
  GruOptions o;
  o.enforce_sorted = false;  // the goldens pack with enforce_sorted=False
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = config.at("num_layers");
  o.bias = config.at("bias");
  o.batch_first = config.at("batch_first");
  o.bidirectional = config.at("bidirectional");
  return o;
}

// Runs a golden case through graft::gru(reference) in `dtype` and checks everything torch recorded.
void check_golden(const std::string& name, DType dtype, double rtol, double atol) {
  SCOPED_TRACE(name + std::string(" in ") + dtype_name(dtype));
  const json g = load_gru_golden(name);
  const GruOptions options = options_of(g.at("config"));
  Tensor input = golden_tensor(g.at("input"), dtype).requires_grad_();
  Tensor h0 = g.at("h0").is_null() ? Tensor() : golden_tensor(g.at("h0"), dtype).requires_grad_();
  std::vector<Tensor> params;
  for (const auto& p : g.at("params")) params.push_back(golden_tensor(p, dtype).requires_grad_());
  Tensor lengths = g.at("config").at("lengths").is_null()
                       ? Tensor()
                       : from_vector<int64_t>(g.at("config").at("lengths").get<std::vector<int64_t>>());
  GruResult r = gru(input, h0, params, options, lengths, GruImplementation::reference);
  expect_close(r.output, g.at("output"), rtol, atol, "output");
  expect_close(r.h_n, g.at("h_n"), rtol, atol, "h_n");
  Tensor loss = sum(r.output * golden_tensor(g.at("proj_output"), dtype)) + sum(r.h_n * golden_tensor(g.at("proj_h_n"), dtype));
  loss.backward();
  expect_close(input.grad(), g.at("grad_input"), rtol, atol, "grad_input");
  if (h0.defined()) expect_close(h0.grad(), g.at("grad_h0"), rtol, atol, "grad_h0");
  for (size_t k = 0; k < params.size(); ++k)
    expect_close(params[k].grad(), g.at("grad_params")[k], rtol, atol, g.at("grad_params")[k].at("name"));
}

const char* kGoldenCases[] = {"uni_1layer",
                              "uni_2layer_h0",
                              "bi_1layer_batch_first",
                              "bi_2layer_h0_lengths",
                              "uni_3layer_lengths_batch_first",
                              "bi_3layer_nobias_h0_lengths_short"};

// Goldens are torch's f64 result rounded to f32: f64 matches to the golden's own rounding,
// f32 adds its own rounding (values are O(1); the 5e-7 floor covers entries near zero).
TEST(GruReference, MatchesTorchGoldensInF64) {
  for (const char* name : kGoldenCases) check_golden(name, DType::f64, 1e-6, 1e-7);
}

TEST(GruReference, MatchesTorchGoldensInF32) {
  for (const char* name : kGoldenCases) check_golden(name, DType::f32, 1e-5, 5e-7);
}

TEST(GruReference, CellMatchesTorchGoldens) {
  for (const char* name : {"cell_hx", "cell_nobias_no_hx"}) {
    for (DType dtype : {DType::f64, DType::f32}) {
      SCOPED_TRACE(name);
      const json g = load_gru_golden(name);
      Tensor x = golden_tensor(g.at("input"), dtype).requires_grad_();
      Tensor hx = g.at("hx").is_null() ? Tensor() : golden_tensor(g.at("hx"), dtype).requires_grad_();
      std::vector<Tensor> p;
      for (const auto& e : g.at("params")) p.push_back(golden_tensor(e, dtype).requires_grad_());
      Tensor h = gru_cell(x, hx, p[0], p[1], p.size() > 2 ? p[2] : Tensor(), p.size() > 2 ? p[3] : Tensor());
      const double rtol = dtype == DType::f64 ? 1e-6 : 1e-5, atol = dtype == DType::f64 ? 1e-7 : 5e-7;
      expect_close(h, g.at("output"), rtol, atol, "output");
      sum(h * golden_tensor(g.at("proj_output"), dtype)).backward();
      expect_close(x.grad(), g.at("grad_input"), rtol, atol, "grad_input");
      if (hx.defined()) expect_close(hx.grad(), g.at("grad_hx"), rtol, atol, "grad_hx");
      // Without hx, h = 0 and weight_hh gets no gradient: torch's zeros are the answer there.
      for (size_t k = 0; k < p.size(); ++k)
        expect_close(p[k].grad(), g.at("grad_params")[k], rtol, atol, "grad_param", !hx.defined() && k == 1);
    }
  }
}

// --- gradcheck (f64) ---

// Random f64 params in PyTorch's layout for the given options.
std::vector<Tensor> random_params(int64_t I, int64_t H, const GruOptions& o) {
  std::vector<Tensor> params;
  const int64_t D = o.bidirectional ? 2 : 1;
  for (int64_t l = 0; l < o.num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      params.push_back(rnd({3 * H, l == 0 ? I : D * H}, -0.8, 0.8));
      params.push_back(rnd({3 * H, H}, -0.8, 0.8));
      if (o.bias) {
        params.push_back(rnd({3 * H}, -0.5, 0.5));
        params.push_back(rnd({3 * H}, -0.5, 0.5));
      }
    }
  return params;
}

// gradcheck over (input, h0, params...) of [output, h_n] flattened into one tensor.
void gradcheck_gru(const GruOptions& o, int64_t T, int64_t N, int64_t I, int64_t H, const Tensor& lengths,
                   uint64_t dropout_seed = 0) {
  const int64_t LD = o.num_layers * (o.bidirectional ? 2 : 1);
  std::vector<Tensor> inputs{rnd(o.batch_first ? Shape{N, T, I} : Shape{T, N, I}), rnd({LD, N, H}, -0.5, 0.5)};
  for (const Tensor& p : random_params(I, H, o)) inputs.push_back(p);
  graft::testing::expect_gradcheck(
      [&](const std::vector<Tensor>& in) {
        GruOptions oo = o;
        Generator gen(dropout_seed);  // a fresh generator per call: the same dropout mask every time
        oo.generator = &gen;
        std::vector<Tensor> params(in.begin() + 2, in.end());
        GruResult r = gru(in[0], in[1], params, oo, lengths, GruImplementation::reference);
        return cat({flatten(r.output), flatten(r.h_n)}, 0);
      },
      inputs);
}

TEST(GruReference, GradcheckUnidirectionalOneLayer) {
  manual_seed(11);
  gradcheck_gru(GruOptions{}, 3, 2, 3, 2, Tensor());
}

TEST(GruReference, GradcheckBidirectionalTwoLayersWithLengths) {
  manual_seed(12);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = 2;
  o.bidirectional = true;
  gradcheck_gru(o, 4, 3, 3, 2, from_vector<int64_t>({2, 4, 1}));
}

TEST(GruReference, GradcheckBatchFirstThreeLayersNoBiasWithShortLengths) {
  manual_seed(13);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = 3;
  o.bias = false;
  o.batch_first = true;
  gradcheck_gru(o, 4, 2, 2, 3, from_vector<int32_t>({3, 2}));  // max length < T: trailing steps are padding
}

TEST(GruReference, GradcheckWithDropoutBetweenLayers) {
  manual_seed(14);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = 2;
  o.bidirectional = true;
  o.dropout = 0.4;
  gradcheck_gru(o, 3, 2, 2, 2, Tensor(), /*dropout_seed=*/99);
}

TEST(GruReference, GradcheckCell) {
  manual_seed(15);
  graft::testing::expect_gradcheck(
      [](const std::vector<Tensor>& in) { return gru_cell(in[0], in[1], in[2], in[3], in[4], in[5]); },
      {rnd({2, 3}), rnd({2, 4}), rnd({12, 3}), rnd({12, 4}), rnd({12}), rnd({12})});
}

// --- semantics ---

TEST(GruReference, LengthsZeroThePaddingAndFreezeTheState) {
  manual_seed(21);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.bidirectional = true;
  const int64_t T = 5, N = 3, I = 2, H = 3;
  std::vector<Tensor> params = random_params(I, H, o);
  Tensor x = rnd({T, N, I});
  const std::vector<int64_t> lens{5, 2, 3};
  GruResult r = gru(x, Tensor(), params, o, from_vector<int64_t>(lens), GruImplementation::reference);
  for (int64_t n = 0; n < N; ++n) {
    // Each sequence alone, cut to its length, gives the same valid outputs and h_n.
    Tensor xn = narrow(narrow(x, 1, n, 1), 0, 0, lens[n]);
    GruResult alone = gru(xn, Tensor(), params, o, Tensor(), GruImplementation::reference);
    EXPECT_TRUE(allclose(narrow(narrow(r.output, 1, n, 1), 0, 0, lens[n]), alone.output, 1e-12, 1e-12)) << n;
    EXPECT_TRUE(allclose(narrow(r.h_n, 1, n, 1), alone.h_n, 1e-12, 1e-12)) << n;
    if (lens[n] < T) {
      EXPECT_EQ(max(abs(narrow(narrow(r.output, 1, n, 1), 0, lens[n], T - lens[n]))).item(), 0.0) << n;
    }
  }
}

TEST(GruReference, DropoutOnlyWhenTrainingAndDeterministicPerGenerator) {
  manual_seed(22);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = 2;
  o.dropout = 0.5;
  std::vector<Tensor> params = random_params(3, 4, o);
  Tensor x = rnd({4, 2, 3});
  GruOptions off = o;
  off.dropout = 0.0;
  const Tensor plain = gru(x, Tensor(), params, off, Tensor(), GruImplementation::reference).output;
  GruOptions eval = o;
  eval.training = false;
  EXPECT_TRUE(allclose(gru(x, Tensor(), params, eval, Tensor(), GruImplementation::reference).output, plain, 0, 0));
  Generator g1(5), g2(5);
  GruOptions t1 = o, t2 = o;
  t1.generator = &g1;
  t2.generator = &g2;
  const Tensor a = gru(x, Tensor(), params, t1, Tensor(), GruImplementation::reference).output;
  const Tensor b = gru(x, Tensor(), params, t2, Tensor(), GruImplementation::reference).output;
  EXPECT_TRUE(allclose(a, b, 0, 0));
  EXPECT_FALSE(allclose(a, plain, 1e-6, 1e-6));
}

TEST(GruReference, AutomaticFallsBackToReferenceAndFusedSaysWhyNot) {
  manual_seed(23);
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  std::vector<Tensor> params = random_params(3, 4, o);
  Tensor x = rnd({4, 2, 3});
  EXPECT_TRUE(allclose(gru(x, Tensor(), params, o).output,
                       gru(x, Tensor(), params, o, Tensor(), GruImplementation::reference).output, 0, 0));
  try {
    gru(x, Tensor(), params, o, Tensor(), GruImplementation::fused);
    ADD_FAILURE() << "fused on f64 did not throw";
  } catch (const NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos) << e.what();
  }
}

// --- errors: each names what was expected and what was given ---

template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const auto& s : fragments) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what() << " lacks " << s;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

TEST(GruReference, RejectsBadArgumentsWithShapesInTheMessage) {
  GruOptions o;
  o.enforce_sorted = false;  // the cases use unsorted lengths, as enforce_sorted=False in torch
  o.num_layers = 2;
  o.bidirectional = true;  // H = 4, I = 3: weight_ih_l1 is [12, 8]
  std::vector<Tensor> p = random_params(3, 4, o);
  Tensor x = rnd({5, 2, 3});
  auto run = [&](const Tensor& in, const Tensor& h0, const std::vector<Tensor>& params, const Tensor& lengths,
                 GruOptions opts) { gru(in, h0, params, opts, lengths, GruImplementation::reference); };
  expect_error<ShapeError>([&] { run(rnd({5, 2, 7}), Tensor(), p, Tensor(), o); }, {"[5, 2, 7]", "input_size 3", "[12, 3]"});
  expect_error<ShapeError>([&] { run(rnd({5, 3}), Tensor(), p, Tensor(), o); }, {"3-D", "[5, 3]"});
  expect_error<ShapeError>([&] { run(x, rnd({2, 2, 4}), p, Tensor(), o); }, {"[4, 2, 4]", "[2, 2, 4]"});
  expect_error<DTypeError>([&] { run(x, rnd({4, 2, 4}).to(DType::f32), p, Tensor(), o); }, {"h0", "f32", "f64"});
  expect_error<ValueError>([&] { run(x, Tensor(), {p.begin(), p.end() - 1}, Tensor(), o); }, {"expected 16", "got 15"});
  auto bad = p;
  bad[5] = rnd({12, 3});  // weight_hh_l0_reverse
  expect_error<ShapeError>([&] { run(x, Tensor(), bad, Tensor(), o); }, {"weight_hh_l0_reverse", "[12, 4]", "[12, 3]"});
  bad = p;
  bad[8] = rnd({12, 4});  // weight_ih_l1 takes D*H = 8 inputs
  expect_error<ShapeError>([&] { run(x, Tensor(), bad, Tensor(), o); }, {"weight_ih_l1", "[12, 8]", "[12, 4]"});
  bad = p;
  bad[14] = rnd({9});  // bias_ih_l1_reverse
  expect_error<ShapeError>([&] { run(x, Tensor(), bad, Tensor(), o); }, {"bias_ih_l1_reverse", "[12]", "[9]"});
  bad = p;
  bad[3] = bad[3].to(DType::f32);
  expect_error<DTypeError>([&] { run(x, Tensor(), bad, Tensor(), o); }, {"bias_hh_l0", "f32"});
  expect_error<ValueError>([&] { run(x, Tensor(), p, from_vector<int64_t>({6, 2}), o); }, {"lengths[0] = 6", "[1, 5]"});
  expect_error<ValueError>([&] { run(x, Tensor(), p, from_vector<int64_t>({3, 0}), o); }, {"lengths[1] = 0"});
  expect_error<ShapeError>([&] { run(x, Tensor(), p, from_vector<int64_t>({3, 2, 1}), o); }, {"[2]", "[3]"});
  expect_error<DTypeError>([&] { run(x, Tensor(), p, from_vector<double>({3, 2}), o); }, {"lengths", "f64"});
  GruOptions bad_options = o;
  bad_options.dropout = 1.5;
  expect_error<ValueError>([&] { run(x, Tensor(), p, Tensor(), bad_options); }, {"dropout", "1.5"});
  bad_options = o;
  bad_options.num_layers = 0;
  expect_error<ValueError>([&] { run(x, Tensor(), p, Tensor(), bad_options); }, {"num_layers"});
  expect_error<ShapeError>([&] { run(rnd({0, 2, 3}), Tensor(), p, Tensor(), o); }, {"no time steps"});
  // batch_first reads N from dim 0: h0 for N = 5 is then wrong.
  GruOptions bf = o;
  bf.batch_first = true;
  expect_error<ShapeError>([&] { run(x, rnd({4, 2, 4}), p, Tensor(), bf); }, {"[4, 5, 4]", "[4, 2, 4]"});
}

TEST(GruReference, CellRejectsBadArguments) {
  Tensor w_ih = rnd({12, 3}), w_hh = rnd({12, 4}), b = rnd({12});
  expect_error<ShapeError>([&] { gru_cell(rnd({2, 5}), Tensor(), w_ih, w_hh, b, b); }, {"[2, 5]", "input_size 3"});
  expect_error<ShapeError>([&] { gru_cell(rnd({2, 3}), rnd({3, 4}), w_ih, w_hh, b, b); }, {"[2, 4]", "[3, 4]"});
  expect_error<ShapeError>([&] { gru_cell(rnd({2, 3}), Tensor(), w_ih, rnd({12, 5}), b, b); }, {"[12, 5]"});
  expect_error<ShapeError>([&] { gru_cell(rnd({2, 3}), Tensor(), w_ih, w_hh, rnd({6}), b); }, {"[12]", "[6]"});
  expect_error<ValueError>([&] { gru_cell(rnd({2, 3}), Tensor(), w_ih, w_hh, b, Tensor()); }, {"both biases"});
  // Unbatched [I] with hx [H] gives [H].
  EXPECT_EQ(gru_cell(rnd({3}), rnd({4}), w_ih, w_hh, b, b).shape(), (Shape{4}));
}

}  // namespace

TEST(GruReference, UnsortedLengthsAreAnErrorUnlessAllowed) {
  Tensor x = randn({4, 3, 2}, DType::f64);  // random_params draws f64
  GruOptions o;
  std::vector<Tensor> params = random_params(2, 3, o);
  try {
    gru(x, Tensor(), params, o, from_vector<int64_t>({4, 2, 3}), GruImplementation::reference);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("lengths[2] = 3 > lengths[1] = 2"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(gru(x, Tensor(), params, o, from_vector<int64_t>({4, 3, 3}), GruImplementation::reference));
  o.enforce_sorted = false;
  EXPECT_NO_THROW(gru(x, Tensor(), params, o, from_vector<int64_t>({4, 2, 3}), GruImplementation::reference));
}
