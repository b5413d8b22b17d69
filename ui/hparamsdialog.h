// Hyperparameters in the workbench: a method's set for the open model (the
// defaults of resources/hparams/<method>.json with the presets that match the
// model, and the file's "about" text) beside the user's overrides, checked as
// they are typed the way an edit checks them (oedit/hparams.h: reads two
// small files, no engine call). HparamsButton keeps the overrides per method
// for the Facts edit panel and the Runs tab.
#pragma once

#include <QDialog>
#include <QHash>
#include <QPushButton>

class QLabel;
class QPlainTextEdit;

class HparamsDialog : public QDialog {
    Q_OBJECT
public:
    HparamsDialog(const QString &method, const QString &modelDir, const QString &overrides,
                  QWidget *parent = nullptr);
    // The overrides as a JSON object text; empty for the defaults.
    QString overrides() const;

private:
    void check();

    QString m_method;
    QString m_modelDir;
    QPlainTextEdit *m_overrides;
    QPlainTextEdit *m_resolved;
    QLabel *m_status;
    QPushButton *m_ok;
};

class HparamsButton : public QPushButton {
    Q_OBJECT
public:
    explicit HparamsButton(QWidget *parent = nullptr);
    void setModelDir(const QString &dir);
    void setMethod(const QString &method);
    // The overrides for `method` as a JSON object text; empty for its defaults.
    QString overrides(const QString &method) const { return m_overrides.value(method); }
    void setOverrides(const QString &method, const QString &json);

private:
    void edit();
    void updateText();

    QString m_modelDir;
    QString m_method;
    QHash<QString, QString> m_overrides;
};
