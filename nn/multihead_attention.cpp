#include "nn/multihead_attention.h"

#include <sstream>

#include "autograd/attention.h"
#include "autograd/ops.h"

namespace graft::nn {

MultiheadAttention::MultiheadAttention(MultiheadAttentionOptions options)
    : Module("MultiheadAttention"), options_(options) {
  if (options.embed_dim < 1 || options.num_heads < 1) {
    throw ValueError("MultiheadAttention: embed_dim and num_heads must be >= 1, got embed_dim=" +
                     std::to_string(options.embed_dim) + " num_heads=" + std::to_string(options.num_heads));
  }
  if (options.embed_dim % options.num_heads != 0) {
    throw ValueError("MultiheadAttention: embed_dim " + std::to_string(options.embed_dim) +
                     " is not a multiple of num_heads " + std::to_string(options.num_heads));
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    throw ValueError("MultiheadAttention: dropout must be in [0, 1), got " + std::to_string(options.dropout));
  }
  const int64_t E = options.embed_dim;
  query = register_module("query", std::make_shared<Linear>(E, E, options.bias));
  key = register_module("key", std::make_shared<Linear>(E, E, options.bias));
  value = register_module("value", std::make_shared<Linear>(E, E, options.bias));
}

Tensor MultiheadAttention::forward(const Tensor& x, const Tensor& key_padding_mask) {
  const int64_t E = options_.embed_dim, h = options_.num_heads, d = head_dim();
  if (!x.defined() || x.dim() != 3 || x.size(2) != E) {
    throw ShapeError("MultiheadAttention(embed_dim=" + std::to_string(E) + "): x must be [N, S, " + std::to_string(E) +
                     "], got " + (x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  }
  const int64_t N = x.size(0), S = x.size(1);
  if (key_padding_mask.defined() && key_padding_mask.shape() != Shape{N, S}) {
    throw ShapeError("MultiheadAttention: key_padding_mask must be [" + std::to_string(N) + ", " + std::to_string(S) +
                     "] for x " + shape_str(x.shape()) + ", got " + shape_str(key_padding_mask.shape()));
  }
  if (key_padding_mask.defined() && key_padding_mask.dtype() != DType::boolean) {
    throw DTypeError(std::string("MultiheadAttention: key_padding_mask must be bool (true = padding), got ") +
                     dtype_name(key_padding_mask.dtype()));
  }
  // Tokens as rows [N*S, E], so each projection is one GEMM forward and backward (a 3-D input makes
  // the weight gradient a batched GEMM plus a reduction). Then [N*S, E] -> [N, h, S, d], a view:
  // heads split off the feature dim as in BertSelfAttention.
  const Tensor rows = x.reshape({N * S, E});
  auto heads = [&](Linear& projection) { return projection.forward(rows).view({N, S, h, d}).transpose(1, 2); };
  AttentionOptions attention;
  attention.key_padding_mask = key_padding_mask;
  attention.dropout_p = is_training() ? options_.dropout : 0.0;
  attention.generator = options_.generator;
  const Tensor context = scaled_dot_product_attention(heads(*query), heads(*key), heads(*value), attention);
  return context.transpose(1, 2).reshape({N, S, E});
}

std::string MultiheadAttention::extra_repr() const {
  std::ostringstream out;
  out << "embed_dim=" << options_.embed_dim << ", num_heads=" << options_.num_heads << ", dropout=" << options_.dropout;
  if (!options_.bias) out << ", bias=false";
  return out.str();
}

}  // namespace graft::nn
