// Measures how responsive the GUI thread's event loop is: a timer asks to run
// every 10 ms and records how late each tick comes. The longest lateness is
// the longest stretch the window could not react (a freeze). A measurement,
// not a check: the figures depend on the machine and what else runs on it.
// GUI thread only.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QTimer>

class StallMonitor : public QObject {
    Q_OBJECT
public:
    explicit StallMonitor(QObject *parent = nullptr);

    void start();
    void stop();
    // Lateness of the latest tick beyond the 10 ms interval, in ms.
    double longestStallMs() const { return m_longest; }
    long long ticks() const { return m_ticks; }
    // Ticks that came more than 100 ms late.
    long long stallsOver100Ms() const { return m_over100; }

private:
    void tick();

    static constexpr int kIntervalMs = 10;
    QTimer m_timer;
    QElapsedTimer m_clock;
    qint64 m_lastNs = 0;
    double m_longest = 0;
    long long m_ticks = 0;
    long long m_over100 = 0;
};
