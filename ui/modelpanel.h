// Model panel: what the engine runs on (build, backend, device) and the model
// that is open (architecture, size, tokenizer), with a button to open another.
#pragma once

#include "engineworker.h"

#include <QWidget>

class QComboBox;
class QLabel;
class QPushButton;

class ModelPanel : public QWidget {
    Q_OBJECT
public:
    explicit ModelPanel(QWidget *parent = nullptr);

    QString selectedDevice() const;

public Q_SLOTS:
    void showBuild(const BuildSummary &summary);
    void showModel(const oedit::ModelInfo &info);

Q_SIGNALS:
    void openRequested(const QString &directory, const QString &device);

private:
    void chooseFolder();

    QLabel *m_version;
    QLabel *m_backend;
    QComboBox *m_device;
    QLabel *m_model;
    QLabel *m_architecture;
    QLabel *m_size;
    QLabel *m_tokenizer;
    QPushButton *m_open;
};
