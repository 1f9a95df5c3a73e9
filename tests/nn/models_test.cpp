// GruClassifier and GruForecaster: shapes, stable child and state-dict names, padding that cannot
// reach the logits under any pooling, errors, and small synthetic tasks they must learn.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/models/gru_classifier.h"
#include "nn/models/gru_forecaster.h"
#include "train/optim/adam.h"

using namespace graft;
using namespace graft::nn;

namespace {

constexpr GruPooling kPoolings[] = {GruPooling::last, GruPooling::mean, GruPooling::max, GruPooling::attention};

GruClassifierOptions classifier_options(GruPooling pooling, bool bidirectional = false, int64_t layers = 1) {
  GruClassifierOptions options;
  options.vocab_size = 12;
  options.embedding_dim = 6;
  options.hidden_size = 5;
  options.num_layers = layers;
  options.bidirectional = bidirectional;
  options.pooling = pooling;
  options.num_classes = 3;
  return options;
}

std::vector<std::string> child_names(const Module& module) {
  std::vector<std::string> names;
  for (const auto& [name, child] : module.named_children()) names.push_back(name);
  return names;
}

Tensor ids(const std::vector<int64_t>& values, int64_t rows) {
  return from_vector(values, {rows, static_cast<int64_t>(values.size()) / rows});
}

}  // namespace

// ---- GruClassifier ----

TEST(GruClassifier, ShapesChildrenAndStateDictNames) {
  for (GruPooling pooling : kPoolings) {
    for (bool bidirectional : {false, true}) {
      manual_seed(0);
      GruClassifier model(classifier_options(pooling, bidirectional, 2));
      const Tensor logits = model.forward(randint(1, 12, {4, 7}), from_vector<int64_t>({7, 1, 3, 5}));
      EXPECT_EQ(logits.shape(), (Shape{4, 3})) << gru_pooling_name(pooling);
      EXPECT_EQ(model.pooled_size(), bidirectional ? 10 : 5);
      EXPECT_EQ(model.features(randint(1, 12, {2, 3})).shape(), (Shape{2, model.pooled_size()}));

      std::vector<std::string> expected_children{"embedding", "gru", "dropout", "head"};
      if (pooling == GruPooling::attention) expected_children.insert(expected_children.begin() + 2, "attention");
      EXPECT_EQ(child_names(model), expected_children);
      const auto state = model.state_dict();
      for (const char* key : {"embedding.weight", "gru.weight_ih_l0", "gru.weight_hh_l1", "gru.bias_hh_l1", "head.weight",
                              "head.bias"})
        EXPECT_TRUE(state.count(key)) << key;
      EXPECT_EQ(state.count("gru.weight_ih_l1_reverse"), bidirectional ? 1u : 0u);
      EXPECT_EQ(state.count("attention.weight"), pooling == GruPooling::attention ? 1u : 0u);
      if (pooling == GruPooling::attention) EXPECT_EQ(state.at("attention.weight").shape(), (Shape{1, model.pooled_size()}));
      EXPECT_EQ(state.at("head.weight").shape(), (Shape{3, model.pooled_size()}));
    }
  }
  GruClassifier model(classifier_options(GruPooling::attention));
  EXPECT_NE(model.repr().find("GruClassifier(pooling=attention, num_classes=3"), std::string::npos) << model.repr();
}

TEST(GruClassifier, PaddedTailNeverReachesTheLogits) {
  const std::vector<int64_t> lengths{5, 3, 1, 6};
  const Tensor length_tensor = from_vector(lengths);
  for (GruPooling pooling : kPoolings) {
    for (bool bidirectional : {false, true}) {
      manual_seed(3);
      GruClassifier model(classifier_options(pooling, bidirectional, 2));
      model.eval();
      const Tensor a = randint(1, 12, {4, 6});
      Tensor b = a.clone();
      {  // scribble over every step past each length
        auto values = b.to_vector<int64_t>();
        for (int64_t n = 0; n < 4; ++n)
          for (int64_t t = lengths[n]; t < 6; ++t) values[n * 6 + t] = (values[n * 6 + t] + 5 + t) % 12;
        b = from_vector(values, {4, 6});
      }
      NoGradGuard no_grad;
      const Tensor logits_a = model.forward(a, length_tensor);
      const Tensor logits_b = model.forward(b, length_tensor);
      const std::string name = std::string(gru_pooling_name(pooling)) + (bidirectional ? " bidirectional" : "");
      EXPECT_TRUE(allclose(logits_a, logits_b, 1e-5, 1e-6)) << name;
      // Each row also equals the same sequence run alone, unpadded.
      for (int64_t n = 0; n < 4; ++n) {
        const Tensor alone = model.forward(a.select(0, n).narrow(0, 0, lengths[n]).unsqueeze(0), Tensor());
        EXPECT_TRUE(allclose(alone.select(0, 0), logits_a.select(0, n), 1e-4, 1e-5)) << name << " row " << n;
      }
    }
  }
}

TEST(GruClassifier, LengthsFromAMaskAndBadInputs) {
  const Tensor mask = from_vector<int64_t>({1, 1, 0, 1, 0, 0, 1, 1, 1}, {3, 3});
  EXPECT_EQ(GruClassifier::lengths_from_mask(mask).to_vector<int64_t>(), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_THROW(GruClassifier::lengths_from_mask(from_vector<int64_t>({1, 0, 1}, {1, 3})), ValueError);  // left gap
  EXPECT_THROW(GruClassifier::lengths_from_mask(from_vector<int64_t>({0, 0}, {1, 2})), ValueError);     // empty row
  EXPECT_THROW(GruClassifier::lengths_from_mask(from_vector<int64_t>({1, 1})), ShapeError);

  GruClassifier model(classifier_options(GruPooling::mean));
  const Tensor x = randint(1, 12, {2, 4});
  EXPECT_THROW(model.forward(randn({2, 4}), Tensor()), ShapeError);             // float ids
  EXPECT_THROW(model.forward(randint(1, 12, {8}), Tensor()), ShapeError);       // 1-D
  EXPECT_THROW(model.forward(x, from_vector<int64_t>({4, 5})), ValueError);     // longer than T
  EXPECT_THROW(model.forward(x, from_vector<int64_t>({0, 2})), ValueError);     // empty sequence
  EXPECT_THROW(model.forward(x, from_vector<int64_t>({1, 2, 3})), ShapeError);  // wrong N
  EXPECT_THROW(model.forward(x, from_vector<float>({1, 2})), ShapeError);       // float lengths
  EXPECT_EQ(model.forward(x, from_vector<int32_t>({4, 2})).shape(), (Shape{2, 3}));  // i32 lengths are fine
  auto bad = classifier_options(GruPooling::last);
  bad.hidden_size = 0;
  EXPECT_THROW(GruClassifier{bad}, ValueError);
  EXPECT_THROW(model.load_embedding(zeros({11, 6})), ShapeError);
}

TEST(GruClassifier, LoadEmbeddingKeepsTheHandleAndFreezes) {
  GruClassifier model(classifier_options(GruPooling::last));
  const Tensor handle = model.embedding->weight;
  const Tensor matrix = arange(0.0, 72.0).reshape({12, 6});
  model.load_embedding(matrix, /*freeze=*/true);
  EXPECT_TRUE(model.embedding->weight.is_same(handle));
  EXPECT_EQ(model.embedding->weight.to_vector<float>(), matrix.to_vector<float>());
  EXPECT_FALSE(model.embedding->weight.requires_grad());
}

// Learns whether token 5 comes before token 7 in sequences of varying length — an order task
// that bag-of-words cannot solve — and gets it right on sequences it never saw.
TEST(GruClassifier, LearnsWhichTokenComesFirst) {
  manual_seed(11);
  Generator data(5);
  const int64_t examples = 256, steps = 8;  // the first half trains, the second half tests
  std::vector<int64_t> tokens(examples * steps, 0), lengths(examples), labels(examples);
  const auto draw = [&](int64_t high) { return randint(0, high, {1}, DType::i64, &data).item<int64_t>(); };
  for (int64_t i = 0; i < examples; ++i) {
    const int64_t length = 3 + draw(steps - 2);  // 3..8
    for (int64_t t = 0; t < length; ++t) tokens[i * steps + t] = 1 + draw(4);  // fillers 1..4
    const int64_t first = draw(length), second = (first + 1 + draw(length - 1)) % length;
    tokens[i * steps + first] = 5;
    tokens[i * steps + second] = 7;
    lengths[i] = length;
    labels[i] = first < second ? 1 : 0;
  }
  const Tensor x = from_vector(tokens, {examples, steps}), len = from_vector(lengths), y = from_vector(labels);
  const int64_t half = examples / 2;

  auto options = classifier_options(GruPooling::last, /*bidirectional=*/false);
  options.vocab_size = 8;
  options.embedding_dim = 8;
  options.hidden_size = 16;
  options.num_classes = 2;
  GruClassifier model(options);
  optim::AdamOptions adam;
  adam.lr = 0.03;
  optim::Adam optimizer(model.parameters(), adam);
  double loss_value = 0.0;
  for (int step = 0; step < 40; ++step) {
    optimizer.zero_grad();
    const Tensor loss = cross_entropy(model.forward(x.narrow(0, 0, half), len.narrow(0, 0, half)), y.narrow(0, 0, half));
    loss.backward();
    optimizer.step();
    loss_value = loss.item();
  }
  model.eval();
  NoGradGuard no_grad;
  const auto predicted = argmax(model.forward(x.narrow(0, half, half), len.narrow(0, half, half)), 1).to_vector<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < half; ++i) correct += predicted[i] == labels[half + i];
  EXPECT_GE(correct, half * 95 / 100) << "held-out accuracy " << correct << "/" << half << ", final loss " << loss_value;
}

// ---- GruForecaster ----

TEST(GruForecaster, ShapesChildrenAndErrors) {
  GruForecasterOptions options;
  options.input_size = 3;
  options.hidden_size = 8;
  options.num_layers = 2;
  options.horizon = 4;
  GruForecaster model(options);
  EXPECT_EQ(model.forward(randn({5, 10, 3})).shape(), (Shape{5, 4}));
  EXPECT_EQ(child_names(model), (std::vector<std::string>{"gru", "dropout", "head"}));
  const auto state = model.state_dict();
  EXPECT_TRUE(state.count("gru.weight_ih_l1"));
  EXPECT_EQ(state.at("head.weight").shape(), (Shape{4, 8}));
  EXPECT_THROW(model.forward(randn({5, 10})), ShapeError);
  EXPECT_THROW(model.forward(randn({5, 10, 2})), ShapeError);
  EXPECT_THROW(model.forward(randint(0, 3, {5, 10, 3})), ShapeError);
  options.horizon = 0;
  EXPECT_THROW(GruForecaster{options}, ValueError);
}

TEST(SeriesWindows, CutsWindowsAndNormalises) {
  const std::vector<float> series{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const SeriesWindows plain = make_series_windows(series, 3, 2, std::nullopt, 2);
  EXPECT_EQ(plain.count(), 3);  // starts 0, 2, 4 (start 6 would need values up to 10)
  EXPECT_EQ(plain.columns.at("inputs").shape(), (Shape{3, 3, 1}));
  EXPECT_EQ(plain.columns.at("inputs").to_vector<float>(), (std::vector<float>{0, 1, 2, 2, 3, 4, 4, 5, 6}));
  EXPECT_EQ(plain.columns.at("labels").to_vector<float>(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(plain.normalization.mean, 0.0);
  EXPECT_EQ(plain.normalization.std, 1.0);

  const SeriesNormalization fitted = SeriesNormalization::fit({1, 3});
  EXPECT_EQ(fitted.mean, 2.0);
  EXPECT_EQ(fitted.std, 1.0);
  const SeriesWindows scaled = make_series_windows({1, 3, 5}, 2, 1, SeriesNormalization{2.0, 2.0});
  EXPECT_EQ(scaled.columns.at("inputs").to_vector<float>(), (std::vector<float>{-0.5f, 0.5f}));
  EXPECT_EQ(scaled.columns.at("labels").to_vector<float>(), (std::vector<float>{1.5f}));
  EXPECT_EQ(scaled.normalization.denormalize(scaled.columns.at("labels")).to_vector<float>(), (std::vector<float>{5}));
  EXPECT_EQ(SeriesNormalization::fit({4, 4}).std, 1.0);  // constant: no division by zero

  const SeriesSplit split = split_series_windows(series, 3, 1, 0.6);
  EXPECT_NEAR(split.normalization.mean, 2.5, 1e-12);  // the first 6 values only
  EXPECT_EQ(split.train.count(), 3);                  // targets 3, 4, 5
  EXPECT_EQ(split.validation.count(), 4);             // targets 6..9, windows reaching back
  EXPECT_NEAR(split.normalization.denormalize(split.validation.columns.at("labels").select(0, 0)).item(), 6.0, 1e-5);

  EXPECT_THROW(make_series_windows(series, 8, 3), ValueError);
  EXPECT_THROW(make_series_windows(series, 0, 1), ValueError);
  EXPECT_THROW(make_series_windows({1, NAN, 2}, 1, 1), ValueError);
  EXPECT_THROW(SeriesNormalization::fit({}), ValueError);
  EXPECT_THROW(split_series_windows(series, 3, 1, 1.5), ValueError);
  EXPECT_THROW(split_series_windows(series, 5, 1, 0.5), ValueError);
}

TEST(GruForecaster, LearnsTheNextValueOfASineWave) {
  manual_seed(2);
  std::vector<float> series(300);
  for (size_t t = 0; t < series.size(); ++t) series[t] = static_cast<float>(3.0 + 2.0 * std::sin(0.3 * t));
  const SeriesSplit split = split_series_windows(series, 8, 1, 0.8);
  const Tensor inputs = split.train.columns.at("inputs"), labels = split.train.columns.at("labels");

  GruForecasterOptions options;
  options.hidden_size = 16;
  GruForecaster model(options);
  optim::AdamOptions adam;
  adam.lr = 0.02;
  optim::Adam optimizer(model.parameters(), adam);
  for (int step = 0; step < 100; ++step) {
    optimizer.zero_grad();
    const Tensor loss = mse_loss(model.forward(inputs), labels);
    loss.backward();
    optimizer.step();
  }
  model.eval();
  NoGradGuard no_grad;
  const Tensor predicted = split.normalization.denormalize(model.forward(split.validation.columns.at("inputs")));
  const Tensor truth = split.normalization.denormalize(split.validation.columns.at("labels"));
  const double mse = mse_loss(predicted, truth).item();
  EXPECT_LT(mse, 1e-3) << "validation MSE in the series' units (amplitude 2)";
}
