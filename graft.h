// graft: the whole public API in one include.
#pragma once

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
