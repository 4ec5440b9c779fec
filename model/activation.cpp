#include "model/activation.h"

namespace ph {

void activation_forward(Backend& be, Activation a, float* out, const float* inp, size_t n) {
  switch (a) {
    case Activation::kGelu:
      return be.gelu_forward(out, inp, n);
    case Activation::kGeluErf:
      return be.gelu_erf_forward(out, inp, n);
    case Activation::kRelu:
      return be.relu_forward(out, inp, n);
  }
}

void activation_backward(Backend& be, Activation a, float* dinp, const float* inp,
                         const float* dout, size_t n) {
  switch (a) {
    case Activation::kGelu:
      return be.gelu_backward(dinp, inp, dout, n);
    case Activation::kGeluErf:
      return be.gelu_erf_backward(dinp, inp, dout, n);
    case Activation::kRelu:
      return be.relu_backward(dinp, inp, dout, n);
  }
}

}  // namespace ph
