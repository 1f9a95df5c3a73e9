// Gradient reversal (Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation"):
// the identity forward, -lambda * grad backward. Placed between a feature extractor and a domain
// classifier, it trains the classifier to tell domains apart while pushing the features to hide
// the domain (DANN).
#pragma once

#include "tensor/tensor.h"

namespace graft {

// Returns x itself (no copy) when nothing requires grad. ValueError for a non-finite lambda.
Tensor gradient_reversal(const Tensor& x, double lambda);

}  // namespace graft
