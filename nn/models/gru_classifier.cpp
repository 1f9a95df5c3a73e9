#include "nn/models/gru_classifier.h"

#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tensor/ops.h"

namespace graft::nn {

namespace {

void check_positive(const char* name, int64_t value) {
  if (value < 1) throw ValueError(std::string("GruClassifier: ") + name + " must be >= 1, got " + std::to_string(value));
}

// lengths as i64 [N] on `device` (where the token ids are), each in [1, T]; undefined stays undefined.
Tensor checked_lengths(const Tensor& lengths, int64_t batch, int64_t steps, Device device) {
  if (!lengths.defined()) return lengths;
  if (lengths.dim() != 1 || lengths.size(0) != batch || !is_integral(lengths.dtype())) {
    throw ShapeError("GruClassifier: lengths must be an integer tensor [" + std::to_string(batch) + "], got " +
                     shape_str(lengths.shape()) + " " + dtype_name(lengths.dtype()));
  }
  const auto values = lengths.to_vector<int64_t>();
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 1 || values[i] > steps) {
      throw ValueError("GruClassifier: lengths[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                       "; expected 1 <= length <= T = " + std::to_string(steps));
    }
  }
  const Tensor as_i64 = lengths.dtype() == DType::i64 ? lengths.detach() : lengths.detach().to(DType::i64);
  return as_i64.device() == device ? as_i64 : as_i64.to(device);
}

}  // namespace

const char* gru_pooling_name(GruPooling pooling) {
  switch (pooling) {
    case GruPooling::last: return "last";
    case GruPooling::mean: return "mean";
    case GruPooling::max: return "max";
    case GruPooling::attention: return "attention";
  }
  return "?";
}

GruClassifier::GruClassifier(GruClassifierOptions options) : Module("GruClassifier"), options_(options) {
  check_positive("vocab_size", options.vocab_size);
  check_positive("embedding_dim", options.embedding_dim);
  check_positive("hidden_size", options.hidden_size);
  check_positive("num_layers", options.num_layers);
  check_positive("num_classes", options.num_classes);
  embedding = register_module(
      "embedding", std::make_shared<Embedding>(options.vocab_size, options.embedding_dim, options.padding_idx));
  GRUOptions gru_options;
  gru_options.input_size = options.embedding_dim;
  gru_options.hidden_size = options.hidden_size;
  gru_options.num_layers = options.num_layers;
  gru_options.batch_first = true;
  gru_options.dropout = options.gru_dropout;
  gru_options.bidirectional = options.bidirectional;
  gru_options.enforce_sorted = false;  // shuffled batches come in any order of lengths
  gru = register_module("gru", std::make_shared<GRU>(gru_options));
  if (options.pooling == GruPooling::attention)
    attention = register_module("attention", std::make_shared<Linear>(pooled_size(), 1, /*bias=*/false));
  dropout = register_module("dropout", std::make_shared<Dropout>(options.dropout));
  head = register_module("head", std::make_shared<Linear>(pooled_size(), options.num_classes));
}

Tensor GruClassifier::features(const Tensor& input_ids, const Tensor& lengths) {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.size(1) < 1 || !is_integral(input_ids.dtype())) {
    throw ShapeError("GruClassifier: input_ids must be an integer tensor [N, T] with T >= 1, got " +
                     (input_ids.defined() ? shape_str(input_ids.shape()) + " " + dtype_name(input_ids.dtype())
                                          : std::string("undefined")));
  }
  const int64_t batch = input_ids.size(0), steps = input_ids.size(1);
  const Tensor valid_lengths = checked_lengths(lengths, batch, steps, input_ids.device());

  const GruResult encoded = gru->forward(embedding->forward(input_ids), Tensor(), valid_lengths);
  const Tensor& output = encoded.output;  // [N, T, P], zero past each length

  if (options_.pooling == GruPooling::last) {
    const Tensor& h_n = encoded.h_n;  // [L*D, N, H]; the top layer's rows are the last D
    const int64_t rows = h_n.size(0);
    if (!options_.bidirectional) return h_n.select(0, rows - 1);
    return cat({h_n.select(0, rows - 2), h_n.select(0, rows - 1)}, 1);
  }

  // padding [N, T] bool: true past each sequence's length (none when lengths is undefined).
  Tensor padding;
  if (valid_lengths.defined())
    padding = ge(arange(steps, TensorOptions(DType::i64).with_device(valid_lengths.device())).unsqueeze(0),
                 valid_lengths.unsqueeze(1));
  const double minus_infinity = -std::numeric_limits<double>::infinity();

  switch (options_.pooling) {
    case GruPooling::mean: {
      if (!padding.defined()) return mean(output, {1});
      // The GRU already zeroes the padded outputs; masking again keeps this pooling honest on its own.
      const Tensor summed = sum(masked_fill(output, padding.unsqueeze(-1), 0.0), {1});
      return summed / valid_lengths.to(output.dtype()).unsqueeze(1);
    }
    case GruPooling::max: {
      const Tensor candidates = padding.defined() ? masked_fill(output, padding.unsqueeze(-1), minus_infinity) : output;
      return max(candidates, 1).first;  // every row has a valid step, so no -inf survives
    }
    case GruPooling::attention: {
      Tensor scores = attention->forward(output).squeeze(-1);  // [N, T]
      if (padding.defined()) scores = masked_fill(scores, padding, minus_infinity);
      const Tensor weights = softmax(scores, 1);  // zero on the padded steps
      return sum(output * weights.unsqueeze(-1), {1});
    }
    case GruPooling::last: break;
  }
  throw ValueError("GruClassifier: unknown pooling");
}

Tensor GruClassifier::forward(const Tensor& input_ids, const Tensor& lengths) {
  return head->forward(dropout->forward(features(input_ids, lengths)));
}

Tensor GruClassifier::lengths_from_mask(const Tensor& attention_mask) {
  if (!attention_mask.defined() || attention_mask.dim() != 2) {
    throw ShapeError("GruClassifier::lengths_from_mask: expected an attention mask [N, T], got " +
                     (attention_mask.defined() ? shape_str(attention_mask.shape()) : std::string("undefined")));
  }
  const int64_t batch = attention_mask.size(0), steps = attention_mask.size(1);
  const auto values = attention_mask.to_vector<double>();
  std::vector<int64_t> lengths(static_cast<size_t>(batch));
  for (int64_t n = 0; n < batch; ++n) {
    int64_t length = 0;
    while (length < steps && values[static_cast<size_t>(n * steps + length)] != 0.0) ++length;
    for (int64_t t = length; t < steps; ++t) {
      if (values[static_cast<size_t>(n * steps + t)] != 0.0) {
        throw ValueError("GruClassifier::lengths_from_mask: row " + std::to_string(n) + " has a real token at step " +
                         std::to_string(t) + " after padding at step " + std::to_string(length) +
                         "; expected right padding");
      }
    }
    if (length == 0) throw ValueError("GruClassifier::lengths_from_mask: row " + std::to_string(n) + " has no real token");
    lengths[static_cast<size_t>(n)] = length;
  }
  return from_vector(lengths, {batch}, TensorOptions(DType::i64).with_device(attention_mask.device()));
}

void GruClassifier::load_embedding(const Tensor& matrix, bool freeze) {
  const Shape expected{options_.vocab_size, options_.embedding_dim};
  if (!matrix.defined() || matrix.shape() != expected) {
    throw ShapeError("GruClassifier::load_embedding: expected a matrix " + shape_str(expected) + ", got " +
                     (matrix.defined() ? shape_str(matrix.shape()) : std::string("undefined")));
  }
  {
    NoGradGuard no_grad;
    ops::copy_into(embedding->weight, matrix);  // in place: optimizers keep their handle
  }
  embedding->weight.requires_grad_(!freeze);
}

std::string GruClassifier::extra_repr() const {
  return std::string("pooling=") + gru_pooling_name(options_.pooling) +
         ", num_classes=" + std::to_string(options_.num_classes);
}

}  // namespace graft::nn
