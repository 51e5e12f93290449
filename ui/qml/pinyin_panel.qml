// The on-screen keyboard of the hall terminal, hosted in a QQuickWidget by ui/pinyin_keyboard.py.
//
// The panel fills the widget: the candidate bar (pinyin only) on top, the keys below, both
// scaled to the widget's width and height. Settings are chosen for a public terminal: no
// floating window, no hide or language key (the page and the header own those), Return does
// not close the keyboard, nothing learnt from what one person types is kept for the next.

import QtQuick
import QtQuick.VirtualKeyboard
import QtQuick.VirtualKeyboard.Settings

Rectangle {
    id: root
    objectName: "pinyinPanelRoot"
    color: "#dfe6ee"

    // "zh_CN" (pinyin) or "en_GB" (latin letters); set by the widget.
    property string keyboardLocale: "zh_CN"
    readonly property bool candidatesShown: InputContext.inputEngine.wordCandidateListVisibleHint
    readonly property int candidateCount: InputContext.inputEngine.wordCandidateListModel
                                          ? InputContext.inputEngine.wordCandidateListModel.count : 0
    readonly property string preeditText: InputContext.preeditText
    readonly property string keyboardLayout: panel.keyboard.layout

    function applyLocale() {
        VirtualKeyboardSettings.activeLocales = [root.keyboardLocale]
        VirtualKeyboardSettings.locale = root.keyboardLocale
    }

    // Drop the composition, the candidates and the predictions without committing anything.
    function wipe() {
        if (InputContext.inputEngine.inputMethod)
            InputContext.inputEngine.inputMethod.reset()
        InputContext.clear()
    }

    onKeyboardLocaleChanged: applyLocale()

    InputPanel {
        id: panel
        objectName: "inputPanel"
        width: root.width
        anchors.bottom: root.bottom
    }

    // The keys take the height the candidate bar leaves; scaleHint stays 1 (pixels).
    Binding {
        target: panel.keyboard.style
        when: panel.keyboard.style !== null
        property: "keyboardDesignWidth"
        value: Math.max(root.width, 1)
    }
    Binding {
        target: panel.keyboard.style
        when: panel.keyboard.style !== null
        property: "keyboardDesignHeight"
        value: Math.max(root.height - (root.candidatesShown ? panel.keyboard.style.selectionListHeight : 0), 1)
    }

    Component.onCompleted: {
        VirtualKeyboardSettings.visibleFunctionKeys = QtVirtualKeyboard.KeyboardFunctionKeys.None
        VirtualKeyboardSettings.handwritingModeDisabled = true
        VirtualKeyboardSettings.defaultInputMethodDisabled = true
        VirtualKeyboardSettings.defaultDictionaryDisabled = true
        VirtualKeyboardSettings.closeOnReturn = false
        VirtualKeyboardSettings.arrowKeyNavigationEnabled = false
        VirtualKeyboardSettings.keySoundVolume = 0
        // Pinyin learns chosen words into a user dictionary on disk unless the field holds
        // sensitive data; every field of a citizen's visit does. Without predictions the bar
        // is empty once a character is chosen: one thing at a time, and no guesses drawn from
        // what is already in the field.
        VirtualKeyboardSettings.inputMethodHints = Qt.ImhSensitiveData | Qt.ImhNoPredictiveText
        VirtualKeyboardSettings.wordCandidateList.alwaysVisible = true
        panel.keyboard.noAnimations = true
        applyLocale()
    }
}
