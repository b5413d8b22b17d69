// Model panel: what the engine runs on (build, backend, device, model).
#pragma once

#include "engineworker.h"

#include <QWidget>

class QLabel;

class ModelPanel : public QWidget {
    Q_OBJECT
public:
    explicit ModelPanel(QWidget *parent = nullptr);

public Q_SLOTS:
    void showBuild(const BuildSummary &summary);

private:
    QLabel *m_version;
    QLabel *m_backend;
    QLabel *m_device;
    QLabel *m_model;
};
