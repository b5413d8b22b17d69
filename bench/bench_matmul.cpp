// Orientation benchmark for the tensor backend: GFLOP/s of a float32 matmul on
// a device, through the engine facade. Usage: bench_matmul [cpu|cuda]
#include "oedit/engine.h"

#include <iostream>

int main(int argc, char **argv)
{
    const std::string device = argc > 1 ? argv[1] : "cpu";
    const auto info = oedit::Engine::buildInfo();
    std::cout << "libtorch " << info.torchVersion << ", BLAS " << info.blas << "\n";
    for (int repeat = 0; repeat < 3; ++repeat) {
        const auto check = oedit::Engine::checkDevice(device);
        if (!check) {
            std::cerr << check.message() << "\n";
            return 1;
        }
        std::cout << check->device << ": " << check->gflops << " GFLOP/s\n";
    }
    return 0;
}
