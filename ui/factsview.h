// Facts view: type a prompt, see the model's top next tokens with their
// probabilities and its greedy continuation.
#pragma once

#include "engineworker.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;
class EditPanel;

class FactsView : public QWidget {
    Q_OBJECT
public:
    explicit FactsView(QWidget *parent = nullptr);

    EditPanel *editPanel() const { return m_editPanel; }

public Q_SLOTS:
    void showPrediction(const QString &prompt, const oedit::Prediction &prediction);
    void setModelReady(bool ready);

Q_SIGNALS:
    void predictRequested(const QString &prompt, int topK);

private:
    void requestPrediction();

    QLineEdit *m_prompt;
    QSpinBox *m_topK;
    QPushButton *m_predict;
    QTableWidget *m_table;
    QLabel *m_continuation;
    EditPanel *m_editPanel;
};
