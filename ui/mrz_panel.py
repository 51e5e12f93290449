"""Staff type a travel document's MRZ data here so its chip can be read (counter and rural)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QFrame, QLineEdit, QVBoxLayout

from kiosk.i18n import _
from ui.widgets import button, label


class MrzPanel(QFrame):
    submitted = Signal(str, str, str)  # document number, birth date, expiry date (as typed)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("notice")
        outer = QVBoxLayout(self)
        self.error = label(name="field_error")
        self.error.hide()
        form = QFormLayout()
        self.number = QLineEdit()
        self.number.setMaxLength(20)
        self.birth = QLineEdit()
        self.birth.setMaxLength(6)
        self.birth.setInputMask("")
        self.expiry = QLineEdit()
        self.expiry.setMaxLength(6)
        self.number_label = label(wrap=False)
        self.birth_label = label(wrap=False)
        self.expiry_label = label(wrap=False)
        form.addRow(self.number_label, self.number)
        form.addRow(self.birth_label, self.birth)
        form.addRow(self.expiry_label, self.expiry)
        self.read_button = button("", self._submit, name="primary")
        for field in (self.number, self.birth):
            field.returnPressed.connect(self.focusNextChild)
        self.expiry.returnPressed.connect(self._submit)
        outer.addWidget(self.error)  # why it is asked, or what to correct: above the fields
        outer.addLayout(form)
        outer.addWidget(self.read_button)
        self.hide()

    def retranslate(self) -> None:
        # The advice shown above the fields says why; the name is for screen readers.
        self.setAccessibleName(_("Type the data from the document's machine readable zone"))
        self.number_label.setText(_("Document number"))
        self.birth_label.setText(_("Date of birth (YYMMDD)"))
        self.expiry_label.setText(_("Date of expiry (YYMMDD)"))
        self.read_button.setText(_("Read the chip"))
        for field, name in (
            (self.number, self.number_label),
            (self.birth, self.birth_label),
            (self.expiry, self.expiry_label),
        ):
            field.setAccessibleName(name.text())

    def ask(self, problem: str) -> None:
        self.retranslate()
        self.show_error(problem)
        self.show()
        self.number.setFocus()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def clear(self) -> None:
        """Forget what was typed: a document number and birth date are personal data."""
        for field in (self.number, self.birth, self.expiry):
            field.setText("")  # unlike clear(), setText leaves nothing to undo
        self.show_error("")
        self.hide()

    def _submit(self) -> None:
        self.submitted.emit(self.number.text(), self.birth.text(), self.expiry.text())
