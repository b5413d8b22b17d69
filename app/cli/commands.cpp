#include "commands.h"

#include "oedit/engine.h"

#include <iomanip>
#include <iostream>

namespace oedit::cli {

namespace {

// Returns the value after `flag`, or `fallback` when the flag is absent.
std::string option(const Args &args, const std::string &flag, const std::string &fallback)
{
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == flag)
            return args[i + 1];
    }
    return fallback;
}

} // namespace

int runInfo(const Args &)
{
    const BuildInfo info = Engine::buildInfo();
    std::cout << "O-Edit Workbench " << info.version << "\n"
              << "libtorch         " << info.torchVersion << "\n"
              << "BLAS             " << info.blas << "\n"
              << "CUDA             " << (info.cudaAvailable ? std::to_string(info.cudaDeviceCount) + " device(s)" : "not available") << "\n";
    const std::string model = Engine::defaultModelDirectory();
    std::cout << "default model    " << (model.empty() ? "not installed" : model) << "\n";
    return 0;
}

int runCheckDevice(const Args &args)
{
    const auto check = Engine::checkDevice(option(args, "--device", "cpu"));
    if (!check) {
        std::cerr << "oedit check-device: " << check.message() << "\n";
        return 1;
    }
    std::cout << "device " << check->device << ": max |error| " << std::scientific << std::setprecision(2)
              << check->maxAbsError << std::defaultfloat << ", " << std::fixed << std::setprecision(1)
              << check->gflops << " GFLOP/s (512^3 matmul)\n";
    return check->maxAbsError < 1e-3 ? 0 : 1;
}

int runDemo(const Args &args)
{
    std::cout << "== O-Edit Workbench headless demo ==\n";
    if (const int rc = runInfo(args))
        return rc;
    return runCheckDevice(args);
}

} // namespace oedit::cli
