/* The erf approximation of the GELU kernels (x86 and NEON): erf(z) = z P(z^2) / Q(z^2) on
 * |z| <= 3.92 (z clamped there, where erf is 1 - 6e-9), P and Q of degree 5. The coefficients were fitted for
 * this file (linearised least squares, reweighted towards the minimax error; the fit's error is
 * 1.6e-8 in exact arithmetic), evaluated by Horner's rule in float32 the error is 3.1e-7.
 * GELU = h + h erf(x / sqrt 2) with h = x / 2 then has an absolute error below 2e-7 max(1, |x|)
 * (1.76e-7 max(1, |x|) at most over 24001 points of [-12, 12] and 20000 of N(0, 9), against
 * float64 erfc): about the accuracy of LiteRT's (XNNPack's) GELU, 1.65e-7 max(1, |x|) measured
 * the same way. Like it, the far negative tail (GELU below ~1e-3) keeps the absolute, not the
 * relative, accuracy;
 * the reference kernel (kernels/ref/elementwise.c) keeps both, through erfc. Plain C constants,
 * included by the AVX2, AVX-512 and NEON files. */
#ifndef EDGEQ_GELU_ERF_H
#define EDGEQ_GELU_ERF_H

#define EQ_GELU_ERF_CLAMP 3.92f
static const float kGeluErfP[6] = {1.128378987312317f,     0.19276092946529388f,
                                   0.053059592843055725f,  0.003868059255182743f,
                                   0.00028745050076395273f, 2.0344637050584424e-06f};
static const float kGeluErfQ[6] = {1.0f,                    0.5041615962982178f,
                                   0.11508288979530334f,    0.015171783976256847f,
                                   0.0011880070669576526f,  3.806630411418155e-05f};

#endif
