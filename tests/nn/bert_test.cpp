// BertModel and BertForSequenceClassification: the real all-MiniLM-L6-v2 against the goldens of
// tests/golden/make_minilm_golden.py (transformers in float64), then, on tiny random models, the
// config and checkpoint errors, padding invariance, dropout, gradients and a short fine-tune.
// N batch, S sequence length, E hidden size.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/models/bert.h"
#include "nn/pooling.h"
#include "nn/safetensors.h"
#include "nn/weights.h"
#include "train/optim/adam.h"

using namespace graft;
using namespace graft::nn;
using json = nlohmann::json;

namespace {

// ---- the real model ----

std::filesystem::path minilm_dir() {
  if (const char* dir = std::getenv("GRAFT_ASSETS_DIR")) return dir;
  return std::filesystem::path(GRAFT_TEST_DATA_DIR) / ".." / "assets" / "all-MiniLM-L6-v2";
}

bool have_minilm() {
  return std::filesystem::is_regular_file(minilm_dir() / "model.safetensors") &&
         std::filesystem::is_regular_file(minilm_dir() / "config.json");
}

#define SKIP_WITHOUT_MINILM()                                      \
  if (!have_minilm())                                              \
  GTEST_SKIP() << "all-MiniLM-L6-v2 not found in " << minilm_dir() \
               << "; run scripts/fetch-assets.sh (or set GRAFT_ASSETS_DIR)"

json load_golden() {
  const std::string path = std::string(GRAFT_TEST_DATA_DIR) + "/golden/minilm/golden.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("missing golden " + path + ": run tests/golden/make_minilm_golden.py");
  return json::parse(in);
}

Tensor int_matrix(const json& rows) {
  std::vector<int64_t> values;
  for (const auto& row : rows)
    for (const auto& v : row) values.push_back(v.get<int64_t>());
  return from_vector(values, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}

Tensor float_entry(const json& entry) {
  return from_vector(entry.at("data").get<std::vector<float>>(), entry.at("shape").get<Shape>());
}

std::shared_ptr<BertModel> minilm() {
  static std::shared_ptr<BertModel> model = BertModel::from_pretrained(minilm_dir());
  return model;
}

// ---- tiny random models ----

BertConfig tiny_config() {
  BertConfig c;
  c.vocab_size = 20;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.type_vocab_size = 2;
  return c;
}

json tiny_json() {
  return json{{"architectures", {"BertModel"}},
              {"model_type", "bert"},
              {"vocab_size", 20},
              {"hidden_size", 8},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 2},
              {"intermediate_size", 12},
              {"max_position_embeddings", 16},
              {"type_vocab_size", 2},
              {"hidden_act", "gelu"},
              {"layer_norm_eps", 1e-12},
              {"pad_token_id", 0}};
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("graft-bert-" + std::to_string(::getpid()) + "-" + name);
}

// Right-padded ids [2, 6]: row 0 has 6 real tokens, row 1 has 4 ([CLS]=1 first, [PAD]=0 after).
Tensor tiny_ids() { return from_vector<int64_t>({1, 5, 7, 9, 3, 2, 1, 4, 8, 2, 0, 0}, {2, 6}); }
Tensor tiny_mask() { return from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 6}); }

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

template <class F>
void expect_message(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    for (const auto& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- all-MiniLM-L6-v2 ----

TEST(BertMiniLM, SentenceEmbeddingsMatchTransformers) {
  SKIP_WITHOUT_MINILM();
  const json golden = load_golden();
  const Tensor ids = int_matrix(golden.at("input_ids"));
  const Tensor mask = int_matrix(golden.at("attention_mask"));
  const Tensor expected = float_entry(golden.at("embeddings"));
  const int64_t count = ids.size(0);
  ASSERT_GE(count, 50);

  NoGradGuard no_grad;
  const Tensor got = minilm()->sentence_embedding(ids, mask);
  ASSERT_EQ(got.shape(), expected.shape());
  double worst_cosine = 0.0, worst_abs = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const Tensor a = got.select(0, i), b = expected.select(0, i);
    const double cosine = sum(a * b).item() / std::sqrt(sum(a * a).item() * sum(b * b).item());
    const double diff = max_abs_diff(a, b);
    worst_cosine = std::max(worst_cosine, 1.0 - cosine);
    worst_abs = std::max(worst_abs, diff);
    EXPECT_GE(cosine, 0.99999) << "sentence " << i << ": " << golden.at("sentences")[i];
    EXPECT_LE(diff, 1e-4) << "sentence " << i << ": " << golden.at("sentences")[i];
  }
  std::printf("minilm golden: %lld sentences, max (1 - cosine) = %.3g, max abs diff = %.3g\n",
              static_cast<long long>(count), worst_cosine, worst_abs);
}

TEST(BertMiniLM, LastHiddenStateMatchesTransformersAndIgnoresPadding) {
  SKIP_WITHOUT_MINILM();
  const json golden = load_golden();
  const Tensor ids = int_matrix(golden.at("input_ids"));
  const Tensor mask = int_matrix(golden.at("attention_mask"));
  const json& entries = golden.at("last_hidden_state");
  std::vector<int64_t> rows;
  for (const json& entry : entries) rows.push_back(entry.at("index").get<int64_t>());
  NoGradGuard no_grad;
  // The stored sentences as a padded batch of their own (padded to the golden's S = 128).
  const Tensor index = from_vector(rows);
  const Tensor batch = minilm()->forward(index_select(ids, 0, index), index_select(mask, 0, index)).last_hidden_state;
  for (size_t j = 0; j < rows.size(); ++j) {
    const int64_t i = rows[j];
    const Tensor expected = float_entry(entries[j]);
    const int64_t length = expected.size(0);
    const Tensor alone = minilm()->forward(ids.narrow(0, i, 1).narrow(1, 0, length), Tensor()).last_hidden_state;
    const double scale = max(abs(expected)).item();
    const double diff_alone = max_abs_diff(alone.select(0, 0), expected);
    const double diff_batch = max_abs_diff(batch.select(0, static_cast<int64_t>(j)).narrow(0, 0, length), expected);
    std::printf(
        "minilm golden: last_hidden_state of sentence %lld (%lld tokens, max |value| %.3g): max abs diff "
        "%.3g alone, %.3g padded\n",
        static_cast<long long>(i), static_cast<long long>(length), scale, diff_alone, diff_batch);
    EXPECT_LE(diff_alone, 1e-4 * std::max(1.0, scale)) << "sentence " << i;
    EXPECT_LE(diff_batch, 1e-4 * std::max(1.0, scale)) << "sentence " << i << " in a padded batch";
  }
}

TEST(BertMiniLM, LoadsAsHuggingFaceNamesIt) {
  SKIP_WITHOUT_MINILM();
  const auto model = minilm();
  EXPECT_FALSE(model->is_training());  // from_pretrained returns eval mode, as transformers
  EXPECT_EQ(model->config().hidden_size, 384);
  EXPECT_EQ(model->config().num_hidden_layers, 6);
  EXPECT_EQ(model->num_parameters(), 22713216);  // transformers' BertModel(all-MiniLM-L6-v2) with its pooler
  const auto state = model->state_dict();
  EXPECT_TRUE(state.count("encoder.layer.5.attention.self.query.weight"));
  EXPECT_TRUE(state.count("pooler.dense.weight"));
  auto classifier = BertForSequenceClassification::from_pretrained(minilm_dir(), 3, BertPooling::mean);
  EXPECT_FALSE(classifier->is_training());
  EXPECT_FALSE(classifier->state_dict().count("bert.pooler.dense.weight"));
  EXPECT_EQ(classifier->state_dict().at("classifier.weight").shape(), (Shape{3, 384}));
  EXPECT_TRUE(
      allclose(classifier->bert->embeddings->word_embeddings->weight, model->embeddings->word_embeddings->weight, 0, 0));
  NoGradGuard no_grad;
  EXPECT_EQ(classifier->forward(from_vector<int64_t>({101, 7592, 102}, {1, 3})).shape(), (Shape{1, 3}));
}

// ---- config ----

TEST(BertConfig, ReadsTheFieldsAndDefaults) {
  const BertConfig c = BertConfig::from_json(tiny_json(), "tiny.json");
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.intermediate_size, 12);
  EXPECT_EQ(c.hidden_dropout_prob, 0.1);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
  json j = tiny_json();
  j["hidden_act"] = "gelu_new";
  j["pad_token_id"] = nullptr;
  const BertConfig d = BertConfig::from_json(j, "tiny.json");
  EXPECT_EQ(d.hidden_act, TransformerActivation::gelu_tanh);
  EXPECT_FALSE(d.pad_token_id.has_value());
  EXPECT_EQ(d.layer_options().activation, TransformerActivation::gelu_tanh);
}

TEST(BertConfig, BadConfigsAreFormatErrorsNamingFieldAndFile) {
  auto expect_format_error = [](json j, const std::string& field) {
    EXPECT_THROW(BertConfig::from_json(j, "cfg.json"), FormatError) << field;
    expect_message([&] { BertConfig::from_json(j, "cfg.json"); }, {"cfg.json", field});
  };
  json j = tiny_json();
  j.erase("hidden_size");
  expect_format_error(j, "hidden_size");
  j = tiny_json();
  j["num_hidden_layers"] = "6";
  expect_format_error(j, "num_hidden_layers");
  j = tiny_json();
  j["vocab_size"] = 20.5;
  expect_format_error(j, "vocab_size");
  j = tiny_json();
  j["layer_norm_eps"] = true;
  expect_format_error(j, "layer_norm_eps");
  j = tiny_json();
  j["hidden_act"] = "swish";
  expect_format_error(j, "hidden_act");
  j = tiny_json();
  j["model_type"] = "gpt2";
  expect_format_error(j, "model_type");
  j = tiny_json();
  j["architectures"] = {"GPT2LMHeadModel"};
  expect_format_error(j, "architectures");
  j = tiny_json();
  j["position_embedding_type"] = "relative_key";
  expect_format_error(j, "position_embedding_type");
  j = tiny_json();
  j["hidden_dropout_prob"] = 1.5;
  expect_format_error(j, "hidden_dropout_prob");
  j = tiny_json();
  j["pad_token_id"] = 20;
  expect_format_error(j, "pad_token_id");
  EXPECT_THROW(BertConfig::from_json(json::array(), "cfg.json"), FormatError);

  j = tiny_json();
  j["num_attention_heads"] = 3;  // 8 % 3 != 0
  EXPECT_THROW(BertConfig::from_json(j, "cfg.json"), ValueError);
  BertConfig c = tiny_config();
  c.num_attention_heads = 3;
  EXPECT_THROW(BertModel{c}, ValueError);

  EXPECT_THROW(BertConfig::from_file(temp_path("absent.json")), IOError);
  const auto path = temp_path("broken.json");
  std::ofstream(path) << "{\"hidden_size\": ";
  expect_message([&] { BertConfig::from_file(path); }, {path.string()});
  EXPECT_THROW(BertConfig::from_file(path), FormatError);
  std::filesystem::remove(path);
  EXPECT_THROW(BertModel::from_pretrained(temp_path("no-such-dir")), IOError);
}

// ---- checkpoints ----

TEST(BertModel, StateDictNamesAreHuggingFaces) {
  BertModel model(tiny_config());
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) names.push_back(name);
  ASSERT_EQ(names.size(), 5u + 2 * 16 + 2);
  EXPECT_EQ(names[0], "embeddings.word_embeddings.weight");
  EXPECT_EQ(names[1], "embeddings.position_embeddings.weight");
  EXPECT_EQ(names[2], "embeddings.token_type_embeddings.weight");
  EXPECT_EQ(names[3], "embeddings.LayerNorm.weight");
  EXPECT_EQ(names[5], "encoder.layer.0.attention.self.query.weight");
  EXPECT_EQ(names.back(), "pooler.dense.bias");
  // transformers' init: the [PAD] row is zero, LayerNorm is (1, 0), weights are N(0, 0.02).
  EXPECT_EQ(max(abs(model.embeddings->word_embeddings->weight.select(0, 0))).item(), 0.0);
  EXPECT_EQ(sum(model.embeddings->layer_norm->weight).item(), 8.0);
  const double std = stddev(model.embeddings->word_embeddings->weight).item();
  EXPECT_NEAR(std, 0.02, 0.005);
  EXPECT_NE(model.repr().find("BertModel(hidden_size=8, num_hidden_layers=2, num_attention_heads=2\n"),
            std::string::npos);
}

TEST(BertModel, LoadsItsOwnCheckpointWithOrWithoutPrefix) {
  manual_seed(1);
  BertModel source(tiny_config());
  source.eval();
  const auto path = temp_path("prefixed.safetensors");
  std::map<std::string, Tensor> stored;
  for (const auto& [name, t] : source.state_dict()) stored["bert." + name] = t;
  stored["bert.embeddings.position_ids"] = arange(16).unsqueeze(0);
  stored["classifier.weight"] = zeros({2, 8});  // a task head: skipped
  save_safetensors(path, stored);

  manual_seed(2);
  BertModel target(tiny_config());
  target.eval();
  target.load_pretrained_weights(path);
  NoGradGuard no_grad;
  EXPECT_EQ(max_abs_diff(target.forward(tiny_ids(), tiny_mask()).last_hidden_state,
                         source.forward(tiny_ids(), tiny_mask()).last_hidden_state),
            0.0);

  BertOptions no_pooler;
  no_pooler.add_pooling_layer = false;
  BertModel headless(tiny_config(), no_pooler);
  headless.load_pretrained_weights(path);  // the file's pooler is skipped
  EXPECT_FALSE(headless.forward(tiny_ids(), tiny_mask()).pooler_output.defined());
  std::filesystem::remove(path);
}

TEST(BertModel, MismatchedCheckpointsNameTheTensorAndShapes) {
  manual_seed(3);
  const auto path = temp_path("mismatch.safetensors");
  BertConfig wide = tiny_config();
  wide.intermediate_size = 16;
  save_weights(BertModel(wide), path);
  BertModel model(tiny_config());
  const Tensor before = model.embeddings->word_embeddings->weight.clone();
  EXPECT_THROW(model.load_pretrained_weights(path), ShapeError);
  expect_message([&] { model.load_pretrained_weights(path); },
                 {"encoder.layer.0.intermediate.dense.bias", "[16]", "[12]", path.string()});
  EXPECT_EQ(max_abs_diff(before, model.embeddings->word_embeddings->weight), 0.0);  // nothing loaded

  BertConfig deep = tiny_config();
  deep.num_hidden_layers = 3;
  save_weights(BertModel(deep), path);
  EXPECT_THROW(model.load_pretrained_weights(path), ValueError);
  expect_message([&] { model.load_pretrained_weights(path); }, {"encoder.layer.2."});

  BertConfig shallow = tiny_config();
  shallow.num_hidden_layers = 1;
  save_weights(BertModel(shallow), path);
  expect_message([&] { model.load_pretrained_weights(path); }, {"lacks", "encoder.layer.1.output.dense.weight"});
  EXPECT_THROW(model.load_pretrained_weights(path), ValueError);
  std::filesystem::remove(path);
}

// ---- forward ----

TEST(BertModel, PaddingNeverChangesRealTokens) {
  manual_seed(4);
  BertModel model(tiny_config());
  model.eval();
  NoGradGuard no_grad;
  const BertModelOutput padded = model.forward(tiny_ids(), tiny_mask());
  EXPECT_EQ(padded.last_hidden_state.shape(), (Shape{2, 6, 8}));
  EXPECT_EQ(padded.pooler_output.shape(), (Shape{2, 8}));
  const BertModelOutput alone = model.forward(tiny_ids().narrow(0, 1, 1).narrow(1, 0, 4), Tensor());
  EXPECT_LT(max_abs_diff(alone.last_hidden_state.select(0, 0), padded.last_hidden_state.select(0, 1).narrow(0, 0, 4)),
            1e-5);
  EXPECT_LT(max_abs_diff(alone.pooler_output.select(0, 0), padded.pooler_output.select(0, 1)), 1e-5);
  // Other ids in the padding, and the mask as bool or i32: the same outputs.
  const Tensor other = from_vector<int64_t>({1, 5, 7, 9, 3, 2, 1, 4, 8, 2, 17, 11}, {2, 6});
  const Tensor bool_mask = ne(tiny_mask(), 0.0);
  EXPECT_LT(max_abs_diff(model.forward(other, bool_mask).last_hidden_state.narrow(1, 0, 4),
                         padded.last_hidden_state.narrow(1, 0, 4)),
            1e-5);
  EXPECT_EQ(
      max_abs_diff(model.forward(tiny_ids(), tiny_mask().to(DType::i32)).last_hidden_state, padded.last_hidden_state),
      0.0);
  // The sentence embedding pools the real tokens only.
  const Tensor embedding = model.sentence_embedding(tiny_ids(), tiny_mask());
  EXPECT_LT(max_abs_diff(embedding.select(0, 1),
                         model.sentence_embedding(tiny_ids().narrow(0, 1, 1).narrow(1, 0, 4), Tensor()).select(0, 0)),
            1e-5);
  EXPECT_NEAR(sum(square(embedding.select(0, 0))).item(), 1.0, 1e-5);
}

TEST(BertModel, TokenTypesAndPositionsMatter) {
  manual_seed(5);
  BertModel model(tiny_config());
  model.eval();
  NoGradGuard no_grad;
  const Tensor base = model.forward(tiny_ids(), tiny_mask()).last_hidden_state;
  const Tensor zeros_given = model.forward(tiny_ids(), tiny_mask(), zeros({2, 6}, DType::i64)).last_hidden_state;
  EXPECT_EQ(max_abs_diff(base, zeros_given), 0.0);  // undefined token types are segment 0
  const Tensor ones_given = model.forward(tiny_ids(), tiny_mask(), ones({2, 6}, DType::i64)).last_hidden_state;
  EXPECT_GT(max_abs_diff(base, ones_given), 1e-4);
}

TEST(BertModel, RejectsBadInputs) {
  BertModel model(tiny_config());
  EXPECT_THROW(model.forward(randint(0, 20, {2, 17}), Tensor()), ValueError);  // S > max_position_embeddings
  expect_message([&] { model.forward(randint(0, 20, {2, 17}), Tensor()); }, {"17", "max_position_embeddings 16"});
  EXPECT_NO_THROW(model.forward(randint(0, 20, {2, 16}), Tensor()));
  EXPECT_THROW(model.forward(randn({2, 6}), Tensor()), ShapeError);
  EXPECT_THROW(model.forward(randint(0, 20, {6}), Tensor()), ShapeError);
  EXPECT_THROW(model.forward(tiny_ids(), tiny_mask().narrow(1, 0, 5)), ShapeError);
  EXPECT_THROW(model.forward(tiny_ids(), tiny_mask().to(DType::f32)), DTypeError);
  EXPECT_THROW(model.forward(tiny_ids(), tiny_mask(), ne(tiny_mask(), 0.0)), DTypeError);    // bool token types
  EXPECT_THROW(model.forward(from_vector<int64_t>({1, 20}, {1, 2}), Tensor()), IndexError);  // id >= vocab_size
}

TEST(BertModel, DropoutOnlyWhileTraining) {
  manual_seed(6);
  BertModel model(tiny_config());
  NoGradGuard no_grad;
  model.train();
  const Tensor a = model.forward(tiny_ids(), tiny_mask()).last_hidden_state;
  const Tensor b = model.forward(tiny_ids(), tiny_mask()).last_hidden_state;
  EXPECT_GT(max_abs_diff(a, b), 1e-4);
  model.eval();
  const Tensor c = model.forward(tiny_ids(), tiny_mask()).last_hidden_state;
  EXPECT_EQ(max_abs_diff(c, model.forward(tiny_ids(), tiny_mask()).last_hidden_state), 0.0);
}

TEST(BertModel, BackwardReachesEveryParameter) {
  manual_seed(7);
  BertModel model(tiny_config());
  const BertModelOutput out =
      model.forward(tiny_ids(), tiny_mask(), from_vector<int64_t>({0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0}, {2, 6}));
  (sum(out.last_hidden_state * randn({2, 6, 8})) + sum(out.pooler_output * randn({2, 8}))).backward();
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_GT(max(abs(p.grad())).item(), 0.0) << name;
  }
  // Only the ids seen get gradient rows, and [PAD] none (padding_idx).
  EXPECT_EQ(max(abs(model.embeddings->word_embeddings->weight.grad().select(0, 0))).item(), 0.0);
}

TEST(BertForSequenceClassification, ShortFineTuneLowersTheLoss) {
  for (BertPooling pooling : {BertPooling::cls, BertPooling::mean}) {
    manual_seed(8);
    BertClassifierOptions options;
    options.num_labels = 2;
    options.pooling = pooling;
    BertForSequenceClassification model(tiny_config(), options);
    EXPECT_EQ(model.state_dict().count("bert.pooler.dense.weight"), pooling == BertPooling::cls ? 1u : 0u);
    EXPECT_TRUE(model.state_dict().count("classifier.weight"));
    // Toy task: does the sequence contain token 3? 16 sequences of length 6, some padded.
    std::vector<int64_t> ids, mask, labels;
    Generator g(11);
    const auto draws = randint(4, 20, {16, 6}, DType::i64, &g).to_vector<int64_t>();
    for (int64_t n = 0; n < 16; ++n) {
      const int64_t length = 3 + n % 4;
      for (int64_t t = 0; t < 6; ++t) {
        int64_t id = t == 0 ? 1 : draws[n * 6 + t];
        if (n % 2 == 0 && t == 1 + n % (length - 1)) id = 3;
        ids.push_back(t < length ? id : 0);
        mask.push_back(t < length ? 1 : 0);
      }
      labels.push_back(n % 2 == 0 ? 1 : 0);
    }
    const Tensor input = from_vector(ids, {16, 6}), attention = from_vector(mask, {16, 6}),
                 target = from_vector(labels);
    optim::AdamWOptions adam;
    adam.lr = 1e-2;
    optim::AdamW optimizer(model.parameters(), adam);
    model.train();
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 40; ++step) {
      optimizer.zero_grad();
      const Tensor loss = cross_entropy(model.forward(input, attention), target);
      loss.backward();
      optimizer.step();
      if (step == 0) first = loss.item();
      last = loss.item();
    }
    EXPECT_LT(last, 0.5 * first) << bert_pooling_name(pooling) << ": loss " << first << " -> " << last;
    EXPECT_NE(model.repr().find(std::string("pooling=") + bert_pooling_name(pooling)), std::string::npos);
  }
}

TEST(Pooling, MeanPoolAndL2Normalize) {
  const Tensor hidden = from_vector<float>({1, 2, 3, 4, 100, 100, 5, 6, 7, 8, 9, 10}, {2, 3, 2});
  const Tensor mask = from_vector<int64_t>({1, 1, 0, 1, 1, 1}, {2, 3});
  EXPECT_EQ(mean_pool(hidden, mask).to_vector<float>(), (std::vector<float>{2, 3, 7, 8}));
  EXPECT_EQ(mean_pool(hidden, zeros({2, 3}, DType::i64)).to_vector<float>(), (std::vector<float>{0, 0, 0, 0}));
  EXPECT_THROW(mean_pool(hidden, mask.narrow(1, 0, 2)), ShapeError);
  const Tensor v = from_vector<float>({3, 4, 0, 0}, {2, 2}).requires_grad_();
  const Tensor n = l2_normalize(v);
  EXPECT_EQ(n.to_vector<float>(), (std::vector<float>{0.6f, 0.8f, 0, 0}));
  sum(n).backward();
  for (float g : v.grad().to_vector<float>()) EXPECT_TRUE(std::isfinite(g));
}
