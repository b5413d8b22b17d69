// The world generator's random numbers: xoshiro256** seeded through
// splitmix64. Written out here because <random>'s distributions are allowed
// to differ between standard libraries, and a world must be byte-identical
// for the same seed wherever it is generated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace oedit::world {

inline uint64_t splitmix64(uint64_t &state)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

class Rng {
public:
    // `stream` separates independent uses of one seed (names, facts, text), so
    // a change in how one is drawn does not shift the others.
    Rng(uint64_t seed, uint64_t stream)
    {
        uint64_t state = seed ^ (stream * 0xd1b54a32d192ed03ULL);
        for (uint64_t &word : m_s)
            word = splitmix64(state);
    }

    uint64_t next()
    {
        const uint64_t result = rotl(m_s[1] * 5, 7) * 9;
        const uint64_t t = m_s[1] << 17;
        m_s[2] ^= m_s[0];
        m_s[3] ^= m_s[1];
        m_s[1] ^= m_s[2];
        m_s[0] ^= m_s[3];
        m_s[2] ^= t;
        m_s[3] = rotl(m_s[3], 45);
        return result;
    }

    // Uniform in [0, n), n > 0; rejection keeps it unbiased.
    int below(int n)
    {
        const uint64_t bound = static_cast<uint64_t>(n);
        const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
        uint64_t x;
        do {
            x = next();
        } while (x >= limit);
        return static_cast<int>(x % bound);
    }

    // Uniform in [lo, hi].
    int between(int lo, int hi) { return lo + below(hi - lo + 1); }
    bool percent(int p) { return below(100) < p; }

    template<typename T> const T &pick(const std::vector<T> &items)
    {
        return items[static_cast<size_t>(below(static_cast<int>(items.size())))];
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t m_s[4];
};

} // namespace oedit::world
