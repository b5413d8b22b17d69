// Facts view: type a prompt, see the model's top next tokens with their
// probabilities and its greedy continuation. When the open model changes (an
// edit, its undo or redo, a rollback it follows, another model) the shown
// prediction is greyed out and asked for again, so it never shows a model
// that is no longer open.
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
    // The open model's weights changed: the prediction shown is out of date.
    void modelChanged();

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
    QString m_shownPrompt; // the prompt of the prediction shown, empty when none
    int m_shownTopK = 0;
};
